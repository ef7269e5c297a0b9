"""Which processes are ROS 2 / Nav2 ones, and which node a command line names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from re import Pattern
from typing import List, Optional, Sequence, Tuple

NAV2_EXECUTABLES = frozenset({
    'amcl',
    'behavior_server',
    'bt_navigator',
    'collision_detector',
    'collision_monitor',
    'controller_server',
    'costmap_filter_info_server',
    'docking_server',
    'following_server',
    'lifecycle_manager',
    'map_saver_server',
    'map_server',
    'nav2_costmap_2d',
    'opennav_docking',
    'planner_server',
    'recoveries_server',
    'route_server',
    'smoother_server',
    'velocity_smoother',
    'waypoint_follower',
})

COMPONENT_CONTAINERS = frozenset({
    'component_container',
    'component_container_isolated',
    'component_container_mt',
})

ROS2_CLI = 'ros2'
ROS2_DAEMON = '_ros2_daemon'
RVIZ = 'rviz2'

_INTERPRETER = re.compile(r'^python(\d+(\.\d+)?)?m?$')
# Interpreter options that take a value; the script is the first argument after them.
_INTERPRETER_VALUE_OPTIONS = frozenset({'-W', '-X', '--check-hash-based-pycs'})
# ROS argument flags followed by one value (ros2/rcl arguments.c).
_ROS_VALUE_FLAGS = frozenset({
    '-p', '--param', '--params-file', '-e', '--enclave', '--log-level', '--log-config-file',
    '--log-file-name',
})
_ROS_REMAP_FLAGS = frozenset({'-r', '--remap'})


class RosProcessKind(str, Enum):
    """Why a process counts as part of the robot's ROS 2 stack."""

    NODE = 'node'  # command line carries --ros-args (or legacy __node:= remaps)
    NAV2 = 'nav2'  # a Nav2 server executable
    CONTAINER = 'container'  # rclcpp component container; memory of all nodes loaded into it
    LAUNCH = 'launch'  # ros2 launch
    CLI = 'cli'  # other ros2 verbs (run, topic, ...)
    DAEMON = 'daemon'  # the ros2 daemon
    RVIZ = 'rviz'
    INCLUDED = 'included'  # matched only by a configured include pattern


@dataclass(frozen=True)
class RosProcessIdentity:
    """What a process is, as far as its command line tells."""

    kind: RosProcessKind
    executable: str
    node_name: str = ''  # '' when the command line names no node
    namespace: str = '/'
    loaded_nodes: Tuple[str, ...] = ()  # nodes known (from arguments) to live in a container
    label: str = ''  # group name for processes that are not a node (launch, daemon, ...)

    @property
    def fully_qualified_name(self) -> str:
        """'/ns/node' when a node is named, '' otherwise."""
        if not self.node_name:
            return ''
        if self.namespace in ('', '/'):
            return '/' + self.node_name
        return self.namespace.rstrip('/') + '/' + self.node_name

    @property
    def group_name(self) -> str:
        """Name under which this process's memory is summed and reported."""
        return self.fully_qualified_name or self.label or self.executable


@dataclass(frozen=True)
class ProcessPatterns:
    """
    Regular expressions (re.search) for processes to add or to leave out.

    A pattern is tried against the executable name, the node's fully qualified name and the whole
    command line joined by spaces. Exclude wins over include and over the built-in rules.
    """

    include: Tuple[str, ...] = ()
    exclude: Tuple[str, ...] = ()
    _compiled: Tuple[Tuple[Pattern[str], ...], Tuple[Pattern[str], ...]] = field(
        default=((), ()), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = []
        for field_name in ('include', 'exclude'):
            patterns = getattr(self, field_name)
            if isinstance(patterns, str):
                raise ValueError(
                    f'{field_name} patterns must be a list of patterns, not the string '
                    f'{patterns!r}')
            regexes = []
            for pattern in patterns:
                if not isinstance(pattern, str) or not pattern.strip():
                    raise ValueError(
                        f'{field_name} patterns must be non-empty strings, got {pattern!r}')
                try:
                    regexes.append(re.compile(pattern))
                except re.error as error:
                    raise ValueError(
                        f'{field_name} pattern {pattern!r} is not a regular expression '
                        f'({error})') from None
            object.__setattr__(self, field_name, tuple(patterns))
            compiled.append(tuple(regexes))
        object.__setattr__(self, '_compiled', (compiled[0], compiled[1]))

    def includes(self, subjects: Sequence[str]) -> bool:
        """Tell whether an include pattern matches one of the subjects."""
        return _matches_any(self._compiled[0], subjects)

    def excludes(self, subjects: Sequence[str]) -> bool:
        """Tell whether an exclude pattern matches one of the subjects."""
        return _matches_any(self._compiled[1], subjects)


def _matches_any(patterns: Sequence[Pattern[str]], subjects: Sequence[str]) -> bool:
    return any(
        pattern.search(subject) is not None
        for pattern in patterns for subject in subjects if subject)


def split_program(name: str, cmdline: Sequence[str]) -> Tuple[str, List[str]]:
    """Program name and its arguments, looking through a Python interpreter to the script."""
    if not cmdline:
        return name, []
    program = _basename(cmdline[0]) or name
    args = list(cmdline[1:])
    if not _INTERPRETER.match(program):
        return program, args
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == '-m' and index + 1 < len(args):
            return args[index + 1], args[index + 2:]
        if arg == '-c':
            return program, args[index + 1:]
        if arg in _INTERPRETER_VALUE_OPTIONS:
            index += 2
            continue
        if arg.startswith('-'):
            index += 1
            continue
        return _basename(arg), args[index + 1:]
    return program, []


def _basename(path: str) -> str:
    return path.rstrip('/').rsplit('/', 1)[-1]


@dataclass(frozen=True)
class RosArguments:
    """The parts of --ros-args this package cares about."""

    has_ros_args: bool
    node_name: str
    namespace: str
    scoped_nodes: Tuple[str, ...]  # nodes named as the target of node-scoped rules


def parse_ros_arguments(args: Sequence[str]) -> RosArguments:
    """Node name, namespace and node-scoped rule targets from a program's arguments."""
    rules: List[str] = []
    legacy_rules: List[str] = []
    has_ros_args = False
    in_ros_args = False
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == '--ros-args':
            has_ros_args = in_ros_args = True
        elif in_ros_args and arg == '--':
            in_ros_args = False
        elif in_ros_args and arg in _ROS_REMAP_FLAGS:
            if index + 1 < len(args):
                rules.append(args[index + 1])
            index += 1
        elif in_ros_args and arg in _ROS_VALUE_FLAGS:
            index += 1
        elif not in_ros_args and ':=' in arg and arg.split(':=', 1)[0].rsplit(':', 1)[-1] in (
                '__node', '__name', '__ns'):
            legacy_rules.append(arg)
        index += 1
    if not has_ros_args:
        # Remaps without --ros-args: the pre-Dashing form some launch files still use.
        rules = legacy_rules

    node_name = ''
    namespace = '/'
    scoped: List[str] = []
    for rule in rules:
        if ':=' not in rule:
            continue
        left, value = rule.split(':=', 1)
        scope, _, key = left.rpartition(':')
        if scope:
            if scope not in scoped:
                scoped.append(scope)
            continue
        if key in ('__node', '__name') and value:
            node_name = value
        elif key == '__ns' and value:
            namespace = value if value.startswith('/') else '/' + value
    return RosArguments(
        has_ros_args=has_ros_args or bool(node_name) or namespace != '/',
        node_name=node_name,
        namespace=namespace,
        scoped_nodes=tuple(scoped),
    )


def classify_process(
    name: str,
    cmdline: Sequence[str],
    patterns: ProcessPatterns = ProcessPatterns(),
) -> Optional[RosProcessIdentity]:
    """Identity of a ROS 2 / Nav2 process, or None when the process is not one (or excluded)."""
    if not cmdline and not name:
        return None
    executable, args = split_program(name, cmdline)
    identity = _builtin_identity(executable, args)
    command_line = ' '.join(cmdline) if cmdline else name
    subjects = [executable, command_line, name]
    if identity is not None:
        subjects.append(identity.fully_qualified_name)
    if patterns.excludes(subjects):
        return None
    if identity is not None:
        return identity
    if patterns.includes(subjects):
        ros = parse_ros_arguments(args)
        return RosProcessIdentity(
            kind=RosProcessKind.INCLUDED, executable=executable,
            node_name=ros.node_name, namespace=ros.namespace, label=executable)
    return None


def _builtin_identity(executable: str, args: Sequence[str]) -> Optional[RosProcessIdentity]:
    if executable == ROS2_DAEMON:
        return RosProcessIdentity(
            kind=RosProcessKind.DAEMON, executable=executable, label='ros2 daemon')
    if executable == ROS2_CLI:
        words = [
            _basename(arg) for arg in args if not arg.startswith('-') and ':=' not in arg]
        verb = words[0] if words else ''
        kind = RosProcessKind.LAUNCH if verb == 'launch' else RosProcessKind.CLI
        return RosProcessIdentity(
            kind=kind, executable=executable, label=' '.join(['ros2'] + words[:3]))

    ros = parse_ros_arguments(args)
    if executable in COMPONENT_CONTAINERS:
        kind = RosProcessKind.CONTAINER
    elif executable in NAV2_EXECUTABLES:
        kind = RosProcessKind.NAV2
    elif executable == RVIZ:
        kind = RosProcessKind.RVIZ
    elif ros.has_ros_args:
        kind = RosProcessKind.NODE
    else:
        return None
    node_name = ros.node_name
    if not node_name and kind is not RosProcessKind.CONTAINER:
        # A node started without a name remap keeps its compiled-in name, which for Nav2 servers
        # and most other executables is the executable name.
        node_name = executable
    loaded = tuple(n for n in ros.scoped_nodes if n != node_name)
    if kind is not RosProcessKind.CONTAINER:
        loaded = ()
    return RosProcessIdentity(
        kind=kind, executable=executable, node_name=node_name, namespace=ros.namespace,
        loaded_nodes=loaded, label=executable)
