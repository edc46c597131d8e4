"""What serves only the book's chapters: numbers into prose and tables (``notebook``), verdict words (``prose``),
the exercise checks students run (``exercises``, comparing with the independent computations of ``answers``), plots several chapters share (``plots``) and the chapters' MyST
turned into plain notebooks (``myst``) and into otter-grader assignments (``assignment``)."""
