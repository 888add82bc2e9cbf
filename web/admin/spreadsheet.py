"""CSV for spreadsheets: UTF-8 with a BOM, no cell read as a formula, rupees as numbers."""

import csv
import io

BOM = "\ufeff"  # spreadsheets read the file as UTF-8 (₹, names) only with it


def cell(value: object) -> str:
    text = "" if value is None else str(value)
    # Spreadsheets run cells that start with these as formulas.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def line(values: tuple[object, ...]) -> str:
    """One CSV record, ending in CRLF."""
    out = io.StringIO()
    csv.writer(out).writerow([cell(v) for v in values])
    return out.getvalue()


def rupees(paise: int | None) -> str:
    """A spreadsheet's number in rupees: 2500 -> 25.00 (no symbol, no grouping)."""
    return "" if paise is None else f"{paise / 100:.2f}"
