"""Reading a built report's HTML in tests: one section, one table row."""

from __future__ import annotations

import re


def section(html: str, key: str) -> str:
    found = re.search(rf'<section id="{key}">(.*?)</section>', html, re.S)
    assert found, f"no section {key}"
    return found.group(1)


def cells(html: str, first_cell: str) -> list[str]:
    """The cells of the first table row whose first cell is `first_cell`."""
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S):
        found = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        if found and found[0] == first_cell:
            return found
    raise AssertionError(f"no row starting with {first_cell!r}")
