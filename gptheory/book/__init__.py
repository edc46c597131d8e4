"""What serves only the book's chapters: numbers into prose and tables (``notebook``), verdict words (``prose``),
the exercise checks students run (``exercises``) and plots several chapters share (``plots``)."""
