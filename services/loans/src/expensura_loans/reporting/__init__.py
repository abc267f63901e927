"""Credit reporting (SHR-4): the monthly furnishing file and bureau-dispute deadlines."""
