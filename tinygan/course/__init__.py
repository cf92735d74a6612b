"""The course around the lessons: what every lesson shares (lesson.py), and the lessons as homework: marked
parts and the students' copies (parts.py), each part's checks (checks.py), and the grader (grade.py)."""
