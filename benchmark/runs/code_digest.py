"""Digests of what code computes, not of how its files are laid out.

A file is digested statement by statement from its syntax tree: comments, docstrings and line
numbers are not in the tree; imports from the project's own packages (`benchmark.*`,
`methods.*`, relative imports) keep only the names they bind, not the module they come from.
A file's digest is of its statements in order; a set of files is digested as the sorted list of
its file digests, so moving or renaming a file or a module leaves the digest unchanged, while
any edit of executed code (a constant, an expression, a default, the order of statements, an
imported external name) changes it. The tree is written out in a form of its own (node types
and non-empty fields), so the digest is the same on every Python version.

Known limit: an import from the project names only what it binds, so pointing it at another
module that defines a function of the same name keeps the digest (no file of the harness does
that; review such an edit by hand).
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path

OWN_PACKAGES = ("benchmark", "methods")  # imports from these name only what they bind


def _is_own(module: str | None, level: int) -> bool:
    return level > 0 or (module or "").split(".")[0] in OWN_PACKAGES


def _strip_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
            and isinstance(first.value.value, str):
        return body[1:] or [ast.Pass()]
    return body


class _Normalise(ast.NodeTransformer):
    """Docstrings out; own-package imports reduced to the names they bind."""

    def _body(self, node: ast.AST) -> ast.AST:
        node.body = _strip_docstring(node.body)  # type: ignore[attr-defined]
        return self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _body  # noqa: N815

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        if _is_own(node.module, node.level):
            return ast.ImportFrom(module="<own>", names=node.names, level=0)
        return node

    def visit_Import(self, node: ast.Import) -> ast.AST:
        names = [ast.alias(name="<own>" if _is_own(a.name, 0) and a.asname else a.name,
                           asname=a.asname) for a in node.names]
        return ast.Import(names=names)


def _canonical(node: object) -> str:
    """The node as text: its type and its non-empty fields, recursively (no positions, no
    fields a Python version adds empty, e.g. 3.12's type_params)."""
    if isinstance(node, ast.AST):
        fields = [(name, getattr(node, name, None)) for name in node._fields]
        inner = ",".join(f"{name}={_canonical(value)}" for name, value in fields
                         if value is not None and value != [])
        return f"{type(node).__name__}({inner})"
    if isinstance(node, list):
        return "[" + ",".join(_canonical(item) for item in node) + "]"
    return repr(node)


def statement_digests(source: str) -> list[str]:
    """One digest per top-level statement of `source`, in order (module docstring left out)."""
    tree = ast.parse(source)
    body = _strip_docstring(tree.body) if tree.body else []
    return [hashlib.sha256(_canonical(_Normalise().visit(statement)).encode()).hexdigest()
            for statement in body]


def file_digest_of(source: str) -> str:
    """A file's digest: its statements in order."""
    return hashlib.sha256("\n".join(statement_digests(source)).encode()).hexdigest()


def source_digest(sources: Iterable[str]) -> str:
    """The digest of a set of sources: their file digests, sorted (where each sits is not what
    it computes)."""
    files = sorted(file_digest_of(source) for source in sources)
    return hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]


def files_digest(paths: Iterable[Path]) -> str:
    """`source_digest` of files (each file parsed once per version of it)."""
    files = []
    for path in paths:
        stat = Path(path).stat()
        files.append(_file_digest(str(path), stat.st_mtime_ns, stat.st_size))
    return hashlib.sha256("\n".join(sorted(files)).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=512)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    """The digest of one version of a file (mtime and size name the version)."""
    return file_digest_of(Path(path).read_text())
