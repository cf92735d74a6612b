"""tinygan course assign and tinygan course grade: the lessons as homework (tinygan.course)."""
from ..options import HelpFormatter, positive_int

TEACHER_HELP = "folder of the teacher's lessons (default: the lessons installed with tinygan)"


def add_course(sub):
    from ..course.grade import MEMORY_MB, TIMEOUT
    p = sub.add_parser("course", help="the lessons as homework: student copies, and a grader",
                       description="The lessons as homework. 'assign' writes the students' copies (the marked "
                                   "parts stubbed out), 'grade' runs each part's checks and prints the points.")
    course = p.add_subparsers(dest="course_command", required=True, help="assign or grade")
    q = course.add_parser("assign", help="write the students' copies of the lessons (.py and .ipynb)",
                          formatter_class=HelpFormatter)
    q.add_argument("lessons", nargs="*", help="lessons to write, e.g. 02 04_conv_im2col (default: all)")
    q.add_argument("--out", required=True, help="folder for the students' copies (no file in it is overwritten)")
    q.add_argument("--teacher", help=TEACHER_HELP)
    q.set_defaults(func=assign)
    q = course.add_parser("grade", help="grade a student's folder of lessons (or a folder of students' folders)",
                          formatter_class=HelpFormatter)
    q.add_argument("folders", nargs="+", help="a student's folder, or a folder with one folder per student")
    q.add_argument("--csv", help="also write the grade book as CSV: student, lesson, part, points, ...")
    q.add_argument("--timeout", type=positive_int, default=TIMEOUT, help="seconds for the checks of one part")
    q.add_argument("--memory", type=positive_int, default=MEMORY_MB, help="MB of memory (address space) for the "
                   "process that runs one part")
    q.add_argument("--teacher", help=TEACHER_HELP)
    q.set_defaults(func=grade_folders)


def assign(args):
    from ..course import grade
    written = grade.assign(args.out, args.lessons, teacher=args.teacher)
    print(f"wrote {len(written) // 2} lessons for students to {args.out} (each as .py and .ipynb); hand out the "
          f"folder, then grade it with: python -m tinygan course grade FOLDER")
    return 0


def grade_folders(args):
    from ..course import grade
    folders = grade.submissions(args.folders)
    teacher = grade.teacher_folder(args.teacher)
    lessons = grade.lesson_files(teacher)                # read once: a student's code cannot change them midway
    sandbox = grade.Sandbox(args.timeout, args.memory, private=[teacher])
    print(sandbox.describe())
    graded = [(folder, grade.grade_or_say(folder, teacher, sandbox, lessons)) for folder in folders]
    if args.csv:
        every = [g for _, grades in graded for g in grades]
        print(f"wrote {grade.write_csv(every, args.csv)} ({len(folders)} student{'s' * (len(folders) > 1)})")
    for folder, grades in graded:                     # each student's table ends with their total
        if len(folders) > 1:
            print(f"\n== {folder.name} ==")
        print("\n".join(grade.table(grades)))
        print("total: {} / {} points".format(*grade.total(grades)))
    return 0
