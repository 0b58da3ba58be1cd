"setuptools shim for the nbdev 2 layout: all metadata lives in settings.ini (no pkg_resources)."
from configparser import ConfigParser
from pathlib import Path
import setuptools

here = Path(__file__).parent
cfg = ConfigParser(delimiters=['='])
cfg.read(here/'settings.ini', encoding='utf-8')
c = cfg['DEFAULT']
lib = c['lib_path']
split = lambda key: c.get(key, '').split()

setuptools.setup(
    name=c['lib_name'], version=c['version'], description=c['description'],
    author=c['author'], author_email=c['author_email'], url=c['git_url'],
    keywords=c.get('keywords', ''), license=c.get('license', ''),
    long_description=(here/'README.md').read_text(encoding='utf-8'), long_description_content_type='text/markdown',
    packages=setuptools.find_packages(include=[lib, f'{lib}.*']), include_package_data=True,
    package_data={lib: ['assets/*', 'assets/**/*', 'splits/*', 'splits/**/*']}, zip_safe=False,
    python_requires='>=' + c['min_python'],
    install_requires=split('requirements'), extras_require={'dev': split('dev_requirements')},
    entry_points={'console_scripts': split('console_scripts'), 'nbdev': [f'{lib}={lib}._modidx:d']},
)
