"""Both package.xml files are valid for catkin_pkg and declare what the robot build needs."""

from catkin_pkg.package import parse_package

RUNTIME_DEPENDS = {
    'rclpy', 'shadowhound_llm_bench_interfaces', 'std_msgs', 'diagnostic_msgs', 'action_msgs',
    'python3-httpx', 'python3-docker', 'python3-psutil', 'python3-yaml', 'python3-matplotlib',
}


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
