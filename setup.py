"""Install the shadowhound_llm_bench ament_python package."""

from glob import glob
import os

from setuptools import find_packages, setup

package_name = 'shadowhound_llm_bench'


def share_tree(folder: str) -> list:
    """Map every file under folder to share/<package>/<its folder>, keeping subfolders."""
    entries = {}
    for path in sorted(glob(os.path.join(folder, '**', '*'), recursive=True)):
        if os.path.isfile(path):
            target = os.path.join('share', package_name, os.path.dirname(path))
            entries.setdefault(target, []).append(path)
    return sorted(entries.items())


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', sorted(glob('launch/*.launch.py'))),
    ] + share_tree('config'),
    install_requires=['setuptools', 'httpx', 'docker', 'psutil', 'pyyaml'],
    zip_safe=True,
    maintainer='ShadowHound maintainers',
    maintainer_email='maintainers@shadowhound.dev',
    description='Benchmark local LLMs served by Ollama on a robot without putting it at risk.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'llm_bench_node = shadowhound_llm_bench.ros.node:main',
            'llm_bench_lifecycle_node = shadowhound_llm_bench.ros.node:lifecycle_main',
            'llm_bench_client = shadowhound_llm_bench.ros.client:main',
            'shadowhound-llm-bench = shadowhound_llm_bench.cli:main',
            'ollama_sim = shadowhound_llm_bench.sim.__main__:main',
        ],
    },
)
