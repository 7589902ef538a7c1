"""quizzes."""
