"""The question bank: editors' questions, import/export, search, duplicates, item statistics."""
