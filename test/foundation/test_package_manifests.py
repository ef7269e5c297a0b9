"""Both package.xml files are valid for catkin_pkg and declare what the robot build needs."""

import ast
import sys

from catkin_pkg.package import parse_package

RUNTIME_DEPENDS = {
    'rclpy', 'shadowhound_llm_bench_interfaces', 'std_msgs', 'diagnostic_msgs', 'action_msgs',
    'python3-httpx', 'python3-docker', 'python3-psutil', 'python3-yaml', 'python3-matplotlib',
    'launch', 'launch_ros', 'ament_index_python',
}
# Import name -> the rosdep key that provides it on a robot.
ROSDEP_KEY = {'httpx': 'python3-httpx', 'httpcore': 'python3-httpx',  # httpx's transport
              'docker': 'python3-docker', 'psutil': 'python3-psutil',
              'yaml': 'python3-yaml', 'matplotlib': 'python3-matplotlib',
              'requests': 'python3-requests', 'scipy': 'python3-scipy',
              'numpy': 'python3-numpy'}


IMPORT_ERRORS = ('ImportError', 'ModuleNotFoundError')


def _catches_import_error(handler):
    caught = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(e, ast.Name) and e.id in IMPORT_ERRORS for e in caught)


def _optional_imports(tree):
    """Return the import nodes inside `try:` blocks that handle ImportError (optional ones)."""
    optional = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
            for inner in node.body:
                optional.update(id(n) for n in ast.walk(inner))
    return optional


def imported_top_level_names(paths):
    """Return the top-level modules the given Python files need (optional imports left out)."""
    names = set()
    for path in paths:
        tree = ast.parse(path.read_text(), str(path))
        optional = _optional_imports(tree)
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                names.update(alias.name.split('.')[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split('.')[0])
    return names


def test_every_runtime_import_is_declared_in_package_xml(repo_root):
    package = parse_package(str(repo_root))
    declared = {dep.name for dep in package.exec_depends}
    code = [p for p in (repo_root / 'shadowhound_llm_bench').rglob('*.py')]
    code += list((repo_root / 'launch').glob('*.py'))
    third_party = {name for name in imported_top_level_names(code)
                   if name not in sys.stdlib_module_names and name != 'shadowhound_llm_bench'}
    missing = sorted(ROSDEP_KEY.get(name, name) for name in third_party
                     if ROSDEP_KEY.get(name, name) not in declared)
    assert not missing, f'imported at run time but not in package.xml: {missing}'


def test_main_package_manifest_is_valid_ament_python(repo_root):
    package = parse_package(str(repo_root))
    package.validate()
    assert package.name == 'shadowhound_llm_bench'
    assert package.package_format == 3
    assert package.get_build_type() == 'ament_python'
    assert RUNTIME_DEPENDS <= {dep.name for dep in package.exec_depends}
    assert {'ament_flake8', 'ament_pep257', 'python3-pytest'} <= {
        dep.name for dep in package.test_depends}


def test_interfaces_manifest_is_valid_rosidl_package(repo_root):
    package = parse_package(str(repo_root / 'interfaces'))
    package.validate()
    assert package.name == 'shadowhound_llm_bench_interfaces'
    assert package.get_build_type() == 'ament_cmake'
    assert 'rosidl_default_generators' in {dep.name for dep in package.buildtool_depends}
    assert {'std_msgs', 'builtin_interfaces', 'action_msgs'} <= {
        dep.name for dep in package.build_depends}
    assert [group.name for group in package.member_of_groups] == ['rosidl_interface_packages']


def test_both_packages_share_version_and_license(repo_root):
    main = parse_package(str(repo_root))
    interfaces = parse_package(str(repo_root / 'interfaces'))
    assert main.version == interfaces.version
    assert main.licenses == interfaces.licenses
