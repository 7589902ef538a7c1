"""Item response theory (logistic 2PL) for the assessment: calibrate, link, score, equate."""
