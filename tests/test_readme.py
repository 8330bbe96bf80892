"""README.md stays a short user guide whose links resolve; every python snippet in it and in docs/ runs as written."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MAX_README_LINES = 250

FENCE = re.compile(r"^```.*?^```[ \t]*$", flags=re.S | re.M)
PYTHON = re.compile(r"^```python\n(.*?)^```[ \t]*$", flags=re.S | re.M)
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", flags=re.M)
EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//|#)")  # http:, mailto:, protocol-relative, same-page anchor


def snippets(path: Path) -> list[str]:
    return PYTHON.findall(path.read_text())


def relative_links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text())  # a link-like string inside a code block is not a link
    links = INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)
    return [link for link in links if not EXTERNAL.match(link)]


README_SNIPPETS = snippets(README)
DOCS_SNIPPETS = [(path, i, code) for path in DOCS for i, code in enumerate(snippets(path))]


def _run(code: str, name: str, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # snippets name repository files (recipes/...) relative to the root
    exec(compile(code, name, "exec"), {})


def test_readme_has_snippets():
    assert len(README_SNIPPETS) >= 2
    assert all(code.strip() for code in README_SNIPPETS)


@pytest.mark.parametrize("index", range(len(README_SNIPPETS)))
def test_readme_snippet_runs(index, monkeypatch):
    _run(README_SNIPPETS[index], f"README.md snippet {index}", monkeypatch)


@pytest.mark.parametrize("path, index, code", DOCS_SNIPPETS, ids=[f"{p.name}-{i}" for p, i, _ in DOCS_SNIPPETS])
def test_docs_snippet_runs(path, index, code, monkeypatch):
    _run(code, f"{path.relative_to(ROOT)} snippet {index}", monkeypatch)


def test_readme_is_short():
    n = len(README.read_text().splitlines())
    assert n < MAX_README_LINES, f"README.md has {n} lines; move detail into docs/ (limit {MAX_README_LINES})"


def test_readme_links_into_docs():
    assert DOCS, "docs/ has no Markdown files"
    assert any(link.startswith("docs/") for link in relative_links(README))


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    missing = []
    for link in relative_links(path):
        target = link.split("#", 1)[0].split("?", 1)[0]
        if target and not (path.parent / target).exists():
            missing.append(link)
    assert not missing, f"{path.relative_to(ROOT)} links to missing files: {missing}"
