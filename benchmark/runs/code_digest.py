"""Digests of what code computes, not of how its files are laid out.

A file is digested statement by statement from its syntax tree: comments, docstrings and line
numbers are not in the tree; imports from the project's own packages (`benchmark.*`,
`methods.*`, relative imports) keep only the names they bind, not the module they come from.
A set of files is digested as the sorted multiset of its top-level statements, so moving a
file, renaming a module or moving a function to another file of the same set leaves the digest
unchanged, while any edit of executed code (a constant, an expression, a default, an imported
external name) changes it.
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


def statement_digests(source: str) -> list[str]:
    """One digest per top-level statement of `source` (module docstring left out)."""
    tree = ast.parse(source)
    body = _strip_docstring(tree.body) if tree.body else []
    out = []
    for statement in body:
        normal = _Normalise().visit(statement)
        dump = ast.dump(normal, annotate_fields=True, include_attributes=False)
        out.append(hashlib.sha256(dump.encode()).hexdigest())
    return out


def source_digest(sources: Iterable[str]) -> str:
    """The digest of a set of sources: their top-level statements as a sorted multiset."""
    statements = sorted(d for source in sources for d in statement_digests(source))
    return hashlib.sha256("\n".join(statements).encode()).hexdigest()[:16]


def files_digest(paths: Iterable[Path]) -> str:
    """`source_digest` of files (each file parsed once per version of it)."""
    statements = []
    for path in paths:
        stat = Path(path).stat()
        statements += _file_statements(str(path), stat.st_mtime_ns, stat.st_size)
    return hashlib.sha256("\n".join(sorted(statements)).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=512)
def _file_statements(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    """The statement digests of one version of a file (mtime and size name the version)."""
    return tuple(statement_digests(Path(path).read_text()))
