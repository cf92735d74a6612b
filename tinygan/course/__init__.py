"""The course around the lessons: what every lesson shares (lesson.py), and the lessons as homework: marked
parts and the students' copies (parts.py), and the grader (grade.py), which runs each part in a fenced process of
its own (sandbox.py starts it, harness.py and landlock.py are its side, probes.py what it computes) and judges the
outputs itself (checks.py, on answers.py, with diagnose.py naming the mistake)."""
