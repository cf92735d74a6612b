"""The parts of a lesson that a student writes: marked in the lesson, stubbed in the student's copy.

A part is marked in the teacher's lesson the way nbgrader marks a solution, with its points and a hint::

        ### BEGIN SOLUTION linear_backward (2 points)
        ### Add dL/dW = G^T x into self.dW and dL/db = G summed over the batch into self.db; return dL/dx = G W.
        self.dW += G.T @ self.x
        ...
        ### END SOLUTION

In the student's copy the code between the hint and the end becomes a stub, and the markers say PART::

        ### BEGIN PART linear_backward (2 points)
        ### Add dL/dW = G^T x into ...
        raise NotImplementedError("part linear_backward: write it here (the hint is above)")
        ### END PART

A part may have several regions (a loss's forward and its backward), all with the same name and points.
The grader finds a student's regions by these markers, so they must stay in the file. Also here: a lesson as
a Jupyter notebook and back, written as plain JSON (nbformat 4), with no package beyond the standard library.
"""
import ast
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass

from . import registry

BEGIN = re.compile(r"^(?P<indent>\s*)### BEGIN (?P<kind>SOLUTION|PART) (?P<part>\w+) \((?P<points>\d+) points?\)\s*$")
END = re.compile(r"^\s*### END (SOLUTION|PART)\s*$")
HINT = re.compile(r"^\s*### (?P<text>.*)$")
STUB = 'raise NotImplementedError("part {part}: write it here (the hint is above)")'
PARSING = threading.Lock()
PARSE_TRIES = 3


def parse_python(source):
    """ast.parse, safe in the grader's threads. CPython 3.11 keeps ast.parse's recursion counter in one place for
    all threads, so two parses at once can fail with "SystemError: AST constructor recursion depth mismatch":
    ours hold PARSING, and one that meets a parse of the standard library's own (a traceback's carets call
    ast.parse) is tried again."""
    with PARSING:
        for attempt in range(PARSE_TRIES):
            try:
                return ast.parse(source)
            except SystemError:
                if attempt == PARSE_TRIES - 1:
                    raise

@dataclass
class Region:
    """One marked region: lines[begin] is its BEGIN marker, lines[code:end] its code, lines[end] its END."""
    part: str
    points: int
    indent: str
    begin: int
    code: int
    end: int
    hint: str


def find_regions(text, name="the lesson"):
    """The marked regions of a lesson's text, in order; ValueError (naming the line) for broken markers."""
    lines, regions, open_region, open_start = text.split("\n"), [], None, None
    for number, line in enumerate(lines):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if open_region:
                raise ValueError(f"{name}, line {number + 1}: a BEGIN marker inside part {open_region.group('part')}"
                                 f" (line {open_start + 1}), which has no END")
            open_region, open_start = begin, number
        elif end:
            if not open_region:
                raise ValueError(f"{name}, line {number + 1}: an END marker without a BEGIN")
            code = open_start + 1
            hints = []
            while code < number and (hint := HINT.match(lines[code])):
                hints.append(hint.group("text"))
                code += 1
            regions.append(Region(open_region.group("part"), int(open_region.group("points")),
                                  open_region.group("indent"), open_start, code, number, " ".join(hints)))
            open_region = None
    if open_region:
        raise ValueError(f"{name}, line {open_start + 1}: part {open_region.group('part')} has no END marker")
    points = {}
    for region in regions:
        if points.setdefault(region.part, region.points) != region.points:
            raise ValueError(f"{name}: part {region.part} is worth {points[region.part]} points in one region "
                             f"and {region.points} in another")
    return regions


def parts_of(text, name="the lesson"):
    """{part: (points, hint)} of a lesson, in order."""
    parts = {}
    for region in find_regions(text, name):
        parts.setdefault(region.part, (region.points, region.hint))
    return parts


def student_version(text, name="the lesson"):
    """The lesson with every part's code replaced by a stub that raises NotImplementedError."""
    lines = text.split("\n")
    for region in reversed(find_regions(text, name)):
        marker = f"{region.indent}### BEGIN PART {region.part} ({region.points} point{'s' * (region.points != 1)})"
        lines[region.begin:region.end + 1] = ([marker] + lines[region.begin + 1:region.code] +
                                              [region.indent + STUB.format(part=region.part),
                                               f"{region.indent}### END PART"])
    return "\n".join(lines)


def solution_lines(text):
    """The stripped, non-empty code lines that appear inside a lesson's parts and nowhere else in it."""
    lines = text.split("\n")
    inside = set()
    for region in find_regions(text):
        inside.update(range(region.code, region.end))
    solution = {lines[i].strip() for i in inside if lines[i].strip()}
    elsewhere = {line.strip() for i, line in enumerate(lines) if i not in inside}
    return solution - elsewhere


def region_code(text, part):
    """The code the student wrote for ``part`` (all its regions, hint lines left out), as one string."""
    lines = text.split("\n")
    return "\n".join("\n".join(lines[r.code:r.end]) for r in find_regions(text) if r.part == part)


def is_stub(text, part):
    """True when every region of ``part`` still holds only the stub of the student's copy."""
    code = region_code(text, part)
    return all(line.strip() in ("", STUB.format(part=part)) for line in code.split("\n"))


def splice(student, teacher, keep, name="the student's lesson"):
    """The student's text, with every part but ``keep`` replaced by the teacher's solution (a whole lesson of
    the student's, for running it: the grader uses ``into_teacher``)."""
    mine, theirs = matching_regions(student, teacher, name)
    lines, teacher_lines = student.split("\n"), teacher.split("\n")
    for own, solution in reversed(list(zip(mine, theirs))):
        if own.part != keep:
            lines[own.begin:own.end + 1] = teacher_lines[solution.begin:solution.end + 1]
    return "\n".join(lines)


def matching_regions(student, teacher, name="the student's lesson"):
    """The regions of the student's text and of the teacher's, one for one; ValueError when markers moved.

    A part whose cell was copied (a notebook habit: the part pasted again further down) has its last copy
    graded, as the last definition is the one Python keeps."""
    mine, theirs = find_regions(student, name), find_regions(teacher)
    wanted = Counter(region.part for region in theirs)
    copies = {part: [r for r in mine if r.part == part] for part in wanted}
    if all(len(copies[part]) % count == 0 and copies[part] for part, count in wanted.items()):
        last = sorted((r for part, count in wanted.items() for r in copies[part][-count:]), key=lambda r: r.begin)
        if [r.part for r in last] == [r.part for r in theirs] and sum(map(len, copies.values())) == len(mine):
            mine = last
    if [r.part for r in mine] != [r.part for r in theirs]:
        raise ValueError(f"{name} has the parts {[r.part for r in mine]}, the lesson {[r.part for r in theirs]}: "
                         "a BEGIN PART or END PART marker was removed or moved")
    return mine, theirs


def into_teacher(student, teacher, keep, name="the student's lesson", needs=()):
    """The teacher's lesson with the student's code for part ``keep`` in it, and where each line came from.

    So a part is graded on its own, inside the code the teacher gave: a stub or a bug in another part, or a
    change the student made to the given code, does not cost it points. The other parts are stubs, except
    those in ``needs`` (the parts that ``keep``'s check runs), which hold the teacher's solution: no more of
    the teacher's solutions reaches the student's process than it needs. Returns (text, origin): origin[i] is
    the index of line i in the student's text, or None for the teacher's lines."""
    mine, theirs = matching_regions(student, teacher, name)
    lines, student_lines = teacher.split("\n"), student.split("\n")
    origin = [None] * len(lines)
    for own, solution in reversed(list(zip(mine, theirs))):
        if own.part == keep:
            lines[solution.code:solution.end] = student_lines[own.code:own.end]
            origin[solution.code:solution.end] = [*range(own.code, own.end)]
        elif own.part not in needs:
            lines[solution.code:solution.end] = [solution.indent + STUB.format(part=solution.part)]
            origin[solution.code:solution.end] = [None]
    return "\n".join(lines), origin


def given_code_changes(student, teacher_copy, name="the student's lesson"):
    """The code lines of the student's text outside the parts that the students' copy does not have (changed or
    added), as [(line index, line)], and how many of the copy's code lines are gone. Comments and blank lines,
    and where cells begin, do not count."""
    def code_outside(text):
        lines = text.split("\n")
        inside = set()
        for region in find_regions(text, name):
            inside.update(range(region.begin, region.end + 1))
        return [(i, line) for i, line in enumerate(lines)
                if i not in inside and line.strip() and not line.strip().startswith("#")]
    mine, given = code_outside(student), code_outside(teacher_copy)
    remaining = Counter(line.rstrip() for _, line in given)
    changed = []
    for i, line in mine:
        if remaining.get(line.rstrip(), 0):
            remaining[line.rstrip()] -= 1
        else:
            changed.append((i, line))
    return changed, sum(remaining.values())


def where(text, index, notebook):
    """Where line ``index`` of a lesson's text is, as its student sees it: 'line 57', or 'cell 12, line 3' in a
    notebook (whose text from_notebook joined)."""
    if not notebook:
        return f"line {index + 1}"
    lines = text.split("\n")
    starts = [i for i in range(index + 1) if lines[i].startswith("# %%")]
    return f"cell {len(starts)}, line {index - starts[-1]}" if starts else f"line {index + 1}"


# --- notebooks ---------------------------------------------------------------------------------------------

def percent_cells(text):
    """[(kind, source)] of a percent-format script: 'code' or 'markdown' cells, split at '# %%' lines."""
    cells, kind, lines = [], "code", []
    for line in text.split("\n"):
        if line.startswith("# %%"):
            cells.append((kind, lines))
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        else:
            lines.append(line)
    cells.append((kind, lines))
    result = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines]
        source = "\n".join(lines).strip("\n")
        if source.strip():
            result.append((kind, source))
    return result


def to_notebook(text):
    """A percent-format lesson as an nbformat-4 notebook (a dict: json.dump it to a .ipynb file)."""
    cells = []
    for number, (kind, source) in enumerate(percent_cells(text)):
        cell = {"cell_type": kind, "id": f"cell-{number}", "metadata": {},
                "source": [line + "\n" for line in source.split("\n")[:-1]] + [source.split("\n")[-1]]}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}}}


IPYTHON_LINE = re.compile(r"^(?P<indent>\s*)(?:[%!]|[\w.]+\?{1,2}\s*$|[\w.,\s]+=\s*[%!])")
PYTHON_CELL_MAGICS = ("%%time", "%%timeit", "%%capture", "%%prun")
SKIPPED = "pass  # IPython, not Python: "


def python_of_cell(source):
    """A code cell's source as Python: an IPython line (%magic, !shell, x = !cmd, name?) that starts a statement
    becomes a ``pass`` that says what it was, and a cell magic whose body is not Python (%%bash, %%html, ...)
    becomes such lines all. A cell that is Python already is left as it is."""
    lines = source.split("\n")
    if lines and lines[0].startswith("%%"):
        if lines[0].split()[0] not in PYTHON_CELL_MAGICS:
            return "\n".join(SKIPPED + line for line in lines)
        return "\n".join([SKIPPED + lines[0], python_of_cell("\n".join(lines[1:]))])
    try:
        parse_python(source)
        return source
    except (SyntaxError, ValueError):
        pass
    starts = statement_starts(source)
    return "\n".join(f"{m.group('indent')}{SKIPPED}{line.strip()}"
                     if i in starts and (m := IPYTHON_LINE.match(line)) else line for i, line in enumerate(lines))


def statement_starts(source):
    """The indices of the lines on which a statement may start: not inside a string or a bracket, nor after a
    backslash (by the tokenizer, which does not need the lines to be Python)."""
    import io
    import tokenize
    starts, at_start = set(), True
    try:
        for token in tokenize.generate_tokens(io.StringIO(source + "\n").readline):
            if token.type == tokenize.NEWLINE:
                at_start = True
            elif at_start and token.type not in (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
                starts.add(token.start[0] - 1)
                at_start = False
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return set(range(len(source.split("\n"))))
    return starts


def from_notebook(notebook_text, name="the notebook"):
    """The code cells of a .ipynb file's text, joined into one script (markdown cells as comments, IPython lines
    as ``pass``: see python_of_cell)."""
    try:
        notebook = json.loads(notebook_text)
        cells = notebook["cells"]
        parts = []
        for cell in cells:
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            if cell["cell_type"] == "code":
                parts.append("# %%\n" + python_of_cell(source))
            else:
                parts.append("# %% [markdown]\n" + "\n".join("# " + line for line in source.split("\n")))
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{name} is not a Jupyter notebook ({type(err).__name__}: {err})") from None
    return "\n\n".join(parts) + "\n"


def library_calls(source, part):
    """The library functions or classes the part must not call (tinygan.course.registry) that the code inside the
    part's regions names."""
    tree = parse_python(source)
    imported = {}                                   # a name in the file -> the tinygan thing it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tinygan"):
            for alias in node.names:
                imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tinygan"):
                    imported[alias.asname or alias.name.split(".")[0]] = alias.asname and alias.name or \
                        alias.name.split(".")[0]
    lines = set()
    for region in find_regions(source):
        if region.part == part:
            lines.update(range(region.code + 1, region.end + 1))       # ast counts lines from 1
    found = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) not in lines:
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [f"{node.module}.{a.name}" if isinstance(node, ast.ImportFrom) else a.name for a in node.names]
        elif isinstance(node, ast.Attribute) or isinstance(node, ast.Name):
            chain, inner = [], node
            while isinstance(inner, ast.Attribute):
                chain.append(inner.attr)
                inner = inner.value
            if not isinstance(inner, ast.Name) or inner.id not in imported:
                continue
            names = [".".join([imported[inner.id]] + chain[::-1])]
        else:
            continue
        found.update(name for name in names if name and name.startswith(registry.forbidden(part) or ("-",)))
    return sorted(found)
