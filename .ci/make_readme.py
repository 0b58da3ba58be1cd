"""Write README.md from nbs/index.ipynb (Quarto, which nbdev_readme needs, cannot be installed offline).

Markdown cells are copied; code cells without `#| hide` become ```python blocks (directives removed; none with
`#| echo: false`), followed by their text output, or their Markdown output as Markdown. `python .ci/make_readme.py --check` exits 1 if README.md is out of date.
"""
import json, sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]


def render(nb_path: Path) -> str:
    cells = json.loads(nb_path.read_text(encoding='utf-8'))['cells']
    parts = []
    for cell in cells:
        src = ''.join(cell['source']).strip('\n')
        lines = src.splitlines()
        if cell['cell_type'] == 'markdown':
            parts.append(src)
            continue
        if any(l.strip() in ('#| hide', '#|hide') or l.startswith('#| default_exp') for l in lines):
            continue
        code = '\n'.join(l for l in lines if not l.startswith('#|')).strip('\n')
        echo = not any(l.replace(' ', '') == '#|echo:false' for l in lines)  # `#| echo: false`: the output alone
        if code and echo: parts.append(f"```python\n{code}\n```")
        text = ''.join(''.join(o.get('text', '')) for o in cell.get('outputs', []) if o.get('output_type') == 'stream')
        text += ''.join(''.join(o.get('data', {}).get('text/plain', '')) for o in cell.get('outputs', [])
                        if o.get('output_type') == 'execute_result')
        markdown = ''.join(''.join(o.get('data', {}).get('text/markdown', '')) for o in cell.get('outputs', []) if 'data' in o)
        if markdown.strip(): parts.append(markdown.strip())
        elif text.strip(): parts.append(f"```\n{text.rstrip()}\n```")
    return '<!-- Generated from nbs/index.ipynb by .ci/make_readme.py: edit the notebook, not this file. -->\n\n' + '\n\n'.join(parts) + '\n'


if __name__ == '__main__':
    text = render(root / 'nbs' / 'index.ipynb')
    readme = root / 'README.md'
    if '--check' in sys.argv:
        if readme.read_text(encoding='utf-8') != text:
            sys.exit('README.md is out of date: run `python .ci/make_readme.py`')
    else:
        readme.write_text(text, encoding='utf-8')
