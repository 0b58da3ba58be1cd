"""Architecture and conformance: the pipeline order of the modules, the size of the notebooks, self-contained text.

A module may import only modules of *lower* notebook number (the order of `nbs/NN[a-z]_*.ipynb`), never by
`importlib`/`__import__`, and never from inside a function. Third-party imports inside a function stay allowed, each
with a comment (on its line or the line above) saying why it is deferred.
"""
import ast, json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS, LIB, PKG = ROOT / 'nbs', ROOT / 'clipfss_nb', 'clipfss_nb'
DYNAMIC_IMPORT_OK = {'cli'}  # `clipfss-eval --method module:attribute` imports the *user's* module it names


def notebook_order(nbs: Path = NBS) -> dict[str, tuple[int, str]]:
    "{module: (number, letter)} from each notebook's `#| default_exp`."
    order = {}
    for nb in nbs.glob('*.ipynb'):
        m = re.match(r'(\d+)([a-z]*)_', nb.name)
        if not m: continue
        for cell in json.loads(nb.read_text())['cells']:
            exp = re.search(r'^#\|\s*default_exp\s+(\S+)', ''.join(cell['source']), re.M)
            if exp: order[exp.group(1)] = (int(m.group(1)), m.group(2)); break
    return order


def _target(node: ast.AST, module: str) -> list[str]:
    "Package modules an import statement names ([] for third-party imports)."
    if isinstance(node, ast.ImportFrom):
        if node.level: return [node.module.split('.')[0]] if node.module else [a.name for a in node.names]
        if node.module == PKG: return [a.name for a in node.names]
        if node.module and node.module.startswith(PKG + '.'): return [node.module.split('.')[1]]
        return []
    return [a.name.split('.')[1] if '.' in a.name else '' for a in node.names if a.name.split('.')[0] == PKG]


def violations(sources: dict[str, str], order: dict[str, tuple[int, str]]) -> list[str]:
    "Every breach of the import rules in `{module: source}`."
    found = []
    for module, src in sources.items():
        tree, lines = ast.parse(src), src.splitlines()
        top = set(map(id, tree.body))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets = _target(node, module)
                local = id(node) not in top
                for t in targets:
                    if local: found.append(f'{module}:{node.lineno}: function-local import of the package ({t or PKG})')
                    elif t and t not in order: found.append(f'{module}:{node.lineno}: imports {t}, which no notebook exports')
                    elif t and order[t] >= order[module]: found.append(f'{module}:{node.lineno}: imports {t} {order[t]}, not below {order[module]}')
                if local and not targets:
                    here, above = lines[node.lineno - 1], lines[node.lineno - 2] if node.lineno > 1 else ''
                    if '#' not in here and not above.strip().startswith('#'):
                        found.append(f'{module}:{node.lineno}: function-local import without a comment saying why')
                if any(a.name.split('.')[0] == 'importlib' for a in node.names) and module not in DYNAMIC_IMPORT_OK:
                    found.append(f'{module}:{node.lineno}: importlib')
            elif isinstance(node, ast.Name) and node.id == '__import__':
                found.append(f'{module}:{node.lineno}: __import__')
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == 'import_module'
                  and node.args and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith(PKG)):
                found.append(f'{module}:{node.lineno}: import_module of the package')
    return found


def library_sources() -> dict[str, str]:
    return {p.stem: p.read_text() for p in LIB.glob('*.py') if not p.name.startswith('_')}


def test_every_module_comes_from_a_numbered_notebook():
    assert set(library_sources()) == set(notebook_order())


def test_imports_only_go_down_the_pipeline():
    assert violations(library_sources(), notebook_order()) == []


@pytest.mark.parametrize('module, src, message', [
    ('core', 'from .evaluate import evaluate\n', 'imports evaluate'),  # upward, relative (as nbdev writes it)
    ('priors', 'from clipfss_nb.cli import script\n', 'imports cli'),  # upward, absolute
    ('priors', 'from clipfss_nb import evaluate\n', 'imports evaluate'),
    ('vtp', 'import clipfss_nb.testing\n', 'imports testing'),  # production code never imports the fixtures
    ('methods', 'def f():\n    from .core import minmax\n', 'function-local import of the package'),
    ('evaluate', 'import importlib\nimportlib.import_module("clipfss_nb.priors")\n', 'importlib'),
    ('evaluate', 'm = __import__("clipfss_nb.priors")\n', '__import__'),
    ('demo', 'def f():\n    import scipy\n', 'without a comment'),
])
def test_planted_breaches_are_caught(module, src, message):
    found = violations({module: src}, notebook_order())
    assert any(message in f for f in found), found


def test_downward_and_commented_local_imports_pass():
    src = ('from .core import minmax\nfrom clipfss_nb.backbone import load_backbone\nimport clipfss_nb\n'
           'def f():\n    from huggingface_hub import hf_hub_download  # deferred: slow to import\n')
    assert violations({'priors': src}, notebook_order()) == []


def test_cli_refuses_to_import_package_modules_by_name():
    from clipfss_nb.cli import resolve_method
    with pytest.raises(ValueError, match='registry names'): resolve_method('clipfss_nb.priors:PriorMethod')


@pytest.mark.parametrize('nb', sorted(NBS.rglob('*.ipynb')), ids=lambda p: str(p.relative_to(NBS)))
def test_notebook_is_light(nb):
    assert nb.stat().st_size <= 400_000, f'{nb.name}: {nb.stat().st_size / 1e3:.0f} KB (limit 400 KB): save figures at display size'


def test_notebooks_in_all_fit():
    assert sum(p.stat().st_size for p in NBS.rglob('*.ipynb')) <= 3_000_000


def test_no_pointers_outside_the_repository():
    pattern = re.compile(r'spec §|specs?/[\w-]+\.md|shared/(specs|seeds)|\.\./shared')
    hits = [f'{p.relative_to(ROOT)}: {m.group(0)}' for p in [*NBS.rglob('*.ipynb'), *LIB.glob('*.py')]
            for m in pattern.finditer(p.read_text())]
    assert hits == []


def test_no_methods_attached_by_assignment():
    "Methods are defined in the class or with `@patch`, so nbdev indexes them (`Class.method = _function` hides them)."
    hits = [f'{p.name}:{i + 1}: {line.strip()}' for p in LIB.glob('*.py') for i, line in enumerate(p.read_text().splitlines())
            if re.match(r"^[A-Z]\w*\.\w+(, [A-Z]\w*\.\w+)* = ", line)]
    assert hits == []
