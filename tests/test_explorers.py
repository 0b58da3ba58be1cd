"""The explorers' live/static switch in a (faked) Jupyter kernel, which the notebook cannot reach under nbdev_test, and a bad-input table."""
from types import SimpleNamespace
import numpy as np
import pytest
import ipywidgets as widgets
from clipfss_nb import explorers
from clipfss_nb.demo import shapeworld_episode
from clipfss_nb.testing import demo_backbone


@pytest.mark.parametrize('shell, env, live', [
    (SimpleNamespace(kernel=object()), {}, True),  # ipykernel: widgets work
    (SimpleNamespace(kernel=object()), {'CLIPFSS_STATIC': '0'}, True),
    (SimpleNamespace(kernel=object()), {'CLIPFSS_STATIC': '1'}, False),  # asked for figures
    (SimpleNamespace(kernel=object()), {'IN_TEST': '1'}, False),  # nbdev_test
    (SimpleNamespace(), {}, False),  # a shell without a kernel (execnb, the terminal IPython)
    (None, {}, False),  # plain Python
])
def test_widgets_live(monkeypatch, shell, env, live):
    for k in ('IN_TEST', 'CLIPFSS_STATIC'): monkeypatch.delenv(k, raising=False)
    for k, v in env.items(): monkeypatch.setenv(k, v)
    monkeypatch.setattr(explorers, 'get_ipython', lambda: shell)
    assert explorers.widgets_live() is live
    assert explorers.live_or_static(lambda: 'widget', lambda: 'figure') == ('widget' if live else 'figure')


def test_show_explorer_displays_the_widget_when_live(monkeypatch):
    for k in ('IN_TEST', 'CLIPFSS_STATIC'): monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(explorers, 'get_ipython', lambda: SimpleNamespace(kernel=object()))
    shown = []
    monkeypatch.setattr(explorers, 'display', shown.append)
    w = widgets.IntSlider(description='x')
    explorers.show_explorer(lambda: w, lambda: pytest.fail('no figure in a live kernel'))
    assert shown == [w]


@pytest.fixture(scope='module')
def bb(): return demo_backbone()


@pytest.mark.parametrize('kw, message', [
    (dict(kind='vtp+vvp'), 'kind must be one of'),
    (dict(vvp_blocks=()), 'vvp_blocks must name blocks'),
    (dict(vvp_blocks=(99,)), 'vvp_blocks must name blocks'),
    (dict(attn_blocks=0), 'attn_blocks must be at least 1'),
    (dict(box_threshold=-0.1), 'box_threshold must lie in [0, 1]'),
    (dict(pir_steps=-1), 'pir_steps must be 0 or more'),
    (dict(threshold=1.5), 'threshold must lie in [0, 1]'),
])
def test_explore_priors_refuses(bb, kw, message):
    with pytest.raises(ValueError, match=message.replace('[', r'\[').replace(']', r'\]')):
        explorers.explore_priors(bb, shapeworld_episode(0, 0), **kw)


@pytest.mark.parametrize('prompt, image, threshold, message', [
    ('', np.zeros((8, 8, 3), np.uint8), 0.3, 'type a prompt'),
    (None, np.zeros((8, 8, 3), np.uint8), 0.3, 'type a prompt'),
    ('a tomato', np.zeros((8, 8), np.uint8), 0.3, 'image must be'),
    ('a tomato', np.zeros((8, 8, 3), np.uint8), 2.0, 'threshold must lie'),
])
def test_clipseg_prompt_refuses(prompt, image, threshold, message):
    with pytest.raises(ValueError, match=message): explorers.clipseg_prompt(None, image, prompt, threshold)  # refused before the model runs


def test_method_and_fold_names_are_checked(bb):
    with pytest.raises(ValueError, match='method must be one of'): explorers.explorer_method('piclip', 0, bb)
    with pytest.raises(ValueError, match='fold must be one of'): explorers.clipseg_box(bb, fold=7)
