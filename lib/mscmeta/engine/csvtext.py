"""Reading a CSV file as text, with the file-level problems said plainly.

:func:`read_csv_text` is the one CSV reader of the bundle (the raw data sheets and the
command line both use it). It reads every cell as text and keeps, for every record, the
*physical* line of the file where it starts, so a message can point at the line a user
sees in an editor even when a quoted cell spans several lines. The failures a careless
save or a hostile file produces each become one :class:`CsvProblem` (file, physical line,
column, what is wrong, what to do), never a parser's internal message:

* a file saved in a semicolon (or tab) locale by Excel: said so, with how to save it
  as comma-separated CSV (it is not guessed at: decimal commas would be read wrongly);
* bytes that are not UTF-8: the physical line and byte, and the likely encoding;
* a record with more or fewer fields than the header, or a quote that is never closed:
  the physical lines of the record;
* a column name twice in the header, an empty file, a header without rows.

A UTF-8 byte-order mark (Excel's "CSV UTF-8") and CRLF line endings are accepted; records
whose cells are all empty (rows Excel leaves behind) are skipped.

References
----------
Shafranovich Y. Common Format and MIME Type for Comma-Separated Values (CSV) Files.
RFC 4180, 2005. https://www.rfc-editor.org/rfc/rfc4180
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from mscmeta.engine.validation import DataError

#: How to fix a file saved with another delimiter (Excel in a locale with decimal commas).
SAVE_AS_CSV = "save it as comma-separated CSV (in Excel: File > Save As > 'CSV UTF-8 (Comma delimited)')"
#: Delimiters recognised (and refused) besides the comma.
OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "vertical bar"}


@dataclass(frozen=True)
class CsvProblem:
    """One file-level problem: the physical line (None = whole file), the column, what is wrong."""

    line: int | None
    column: str | None
    message: str
    fatal: bool = False

    def where(self, name: str) -> str:
        parts = [name, f"line {self.line}" if self.line is not None else "whole file"]
        if self.column:
            parts.append(f"column {self.column}")
        return ", ".join(parts)


@dataclass
class CsvText:
    """A CSV file as text: the header, the records and the physical line where each starts."""

    header: list[str]
    rows: list[list[str]]
    lines: list[int]
    header_line: int = 1
    problems: list[CsvProblem] = field(default_factory=list)


class CsvFileError(DataError):
    """A CSV file cannot be read; the message is one line per problem, each naming file and line."""

    def __init__(self, name: str, problems: list[CsvProblem]) -> None:
        self.name = name
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.where(name)}: {p.message}" for p in self.problems))


def _decode(data: bytes) -> tuple[str | None, CsvProblem | None]:
    """UTF-8 text of *data* (a byte-order mark dropped), or the problem with line and byte."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None, CsvProblem(None, None, "the file is UTF-16 encoded; " + SAVE_AS_CSV, fatal=True)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        bad = data[exc.start:exc.start + 1]
        guess = bad.decode("cp1252", errors="replace")
        return None, CsvProblem(
            line, None,
            f"byte {exc.start + 1} of the file (byte {exc.start - line_start + 1} of the line, 0x{bad.hex()}) is not "
            f"valid UTF-8 (it reads as {guess!r} in Windows-1252/Latin-1): save the file as UTF-8 "
            "(in Excel: 'CSV UTF-8')",
            fatal=True,
        )


def _first_line(text: str) -> tuple[int, str]:
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            return number, line.rstrip("\r")
    return 1, ""


def _delimiter_problem(header_line: int, line: str) -> CsvProblem | None:
    """The header's delimiter, if it is not a comma (the header then reads as one column)."""
    comma = next(csv.reader([line]))
    if len(comma) > 1:
        return None
    for delim, name in OTHER_DELIMITERS.items():
        if len(next(csv.reader([line], delimiter=delim))) > 1:
            return CsvProblem(header_line, None, f"the file is {name}-separated, not comma-separated; {SAVE_AS_CSV}",
                              fatal=True)
    return None


def _records(text: str) -> tuple[list[tuple[int, int, list[str]]], CsvProblem | None]:
    """``(first line, last line, fields)`` of every non-blank record, or the problem that stopped the parse."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    out: list[tuple[int, int, list[str]]] = []
    previous = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return out, None
        except csv.Error as exc:
            start = previous + 1
            if "end of data" in str(exc) or "EOF" in str(exc):
                msg = (f"a quote opened in the record starting in this line is never closed (it runs to line "
                       f"{reader.line_num}, the end of the file): close it, or write a quote inside a cell as \"\"")
            elif "NUL" in str(exc):
                msg = "the line contains a NUL byte (not a text file?)"
            else:
                msg = ("unbalanced quote: a quoted cell must end with a quote right before the next comma "
                       "(write a quote inside a cell as \"\")")
            return out, CsvProblem(start, None, msg, fatal=True)
        first, previous = previous + 1, reader.line_num
        if any(f.strip() for f in fields):
            out.append((first, reader.line_num, fields))


def _field_count_problem(first: int, last: int, n_fields: int, n_header: int) -> CsvProblem:
    span = f"lines {first}-{last} form one record" if last > first else "the record"
    hint = ("a quote opened in line {first} closes only in line {last}: check for an unbalanced quote".format(
        first=first, last=last) if last > first else
        "a comma inside a cell needs the cell in quotes; an unbalanced quote joins or splits cells")
    return CsvProblem(first, None, f"{span} has {n_fields} fields but the header has {n_header}; {hint}")


def _header_problems(header: list[str], header_line: int) -> list[CsvProblem]:
    problems = []
    seen: set[str] = set()
    for i, name in enumerate(header, start=1):
        if not name.strip():
            problems.append(CsvProblem(header_line, None, f"column {i} of the header has no name"))
        elif name in seen:
            problems.append(CsvProblem(header_line, name, "column appears twice in the header (the second is ignored)"))
        seen.add(name)
    return problems


def parse_csv_text(text: str) -> CsvText | CsvProblem:
    """Parse decoded CSV text (see :func:`read_csv_text`); a fatal problem is returned, not raised."""
    header_line, first = _first_line(text)
    if not first.strip():
        return CsvProblem(None, None, "the file is empty (no header line)", fatal=True)
    problem = _delimiter_problem(header_line, first)
    if problem is not None:
        return problem
    records, problem = _records(text)
    if problem is not None:
        return problem
    (_, _, header), body = records[0], records[1:]
    result = CsvText(header=list(header), rows=[], lines=[], header_line=header_line,
                     problems=_header_problems(header, header_line))
    for first_line, last_line, fields in body:
        if len(fields) != len(header):
            result.problems.append(_field_count_problem(first_line, last_line, len(fields), len(header)))
            continue
        result.rows.append(fields)
        result.lines.append(first_line)
    return result


def read_csv_text(path: str | os.PathLike) -> CsvText | CsvProblem:
    """Read a CSV file with every cell as text.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    CsvText or CsvProblem
        The parsed file, whose ``problems`` lists the records left out (wrong number of
        fields) and header problems; or the one problem that makes the file unreadable
        (missing, empty, not UTF-8, not comma-separated, a quote never closed).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return CsvProblem(None, None, "no such file", fatal=True)
    except IsADirectoryError:
        return CsvProblem(None, None, "is a folder, not a file", fatal=True)
    except OSError as exc:
        return CsvProblem(None, None, f"cannot be read ({exc.strerror})", fatal=True)
    if not data.strip():
        return CsvProblem(None, None, "the file is empty (no header line)", fatal=True)
    text, problem = _decode(data)
    if problem is not None:
        return problem
    return parse_csv_text(text)


def load_csv_text(path: str | os.PathLike, name: str | None = None) -> CsvText:
    """:func:`read_csv_text`, raising :class:`CsvFileError` on any problem (the command line's reader)."""
    name = name or str(path)
    result = read_csv_text(path)
    if isinstance(result, CsvProblem):
        raise CsvFileError(name, [result])
    if result.problems:
        raise CsvFileError(name, result.problems)
    return result
