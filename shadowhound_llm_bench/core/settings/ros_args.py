"""The ROS arguments of a node's command line, read before rclpy.init: parameters files checked."""

from __future__ import annotations

from typing import Any, List, Sequence

from ..runs.inert_text import quoted

ROS_ARGS = "--ros-args"
ROS_ARGS_END = "--"
PARAMS_FILE_FLAG = "--params-file"
ROS_PARAMETERS = "ros__parameters"


def parameter_args(name: str, value: Any) -> List[str]:
    """Return one `-p name:=value` pair in the ROS command-line syntax (YAML values)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list):
        text = "[" + ", ".join(f"'{v}'" for v in value) + "]"
    elif isinstance(value, float):
        text = repr(value)  # keeps a float a float: 1.0, not 1
    elif value == "":
        text = "''"  # rcl refuses `name:=` with nothing after it
    else:
        text = str(value)
    return ["-p", f"{name}:={text}"]


def params_files(argv: Sequence[str]) -> List[str]:
    """Return the paths given with --params-file inside the --ros-args sections, in order."""
    paths: List[str] = []
    inside = False
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == ROS_ARGS:
            inside = True
        elif arg == ROS_ARGS_END:
            inside = False
        elif inside and arg == PARAMS_FILE_FLAG and index + 1 < len(argv):
            paths.append(argv[index + 1])
            index += 1
        index += 1
    return paths


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def params_file_error(path: str) -> str:
    """Say why a parameters file cannot be used (unreadable, not YAML, not a mapping), or ''."""
    import yaml  # here, so that building a command line (the demo, before setup) needs no PyYAML

    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        return f"cannot read parameters file {path}: {exc.strerror or _one_line(exc)}"
    except UnicodeDecodeError as exc:
        return f"parameters file {path} is not text: {_one_line(exc)}"
    except yaml.YAMLError as exc:
        from ...common.bounded_yaml import yaml_error_reason  # beside the PyYAML import above

        # PyYAML's own text quotes the offending line: name the place, never the content.
        return f"parameters file {path} is not valid YAML at {yaml_error_reason(exc)}"
    if data is None:
        return ""
    if not isinstance(data, dict):
        return (f"parameters file {path} must map node names to 'ros__parameters' "
                f"(e.g. '/**:' or 'llm_bench:'), got a {type(data).__name__}")
    problem = _structure_error(data, [])
    return f"parameters file {path}: {problem}" if problem else ""


def _structure_error(data: dict, where: List[str]) -> str:
    """Node names (nested namespaces allowed) down to 'ros__parameters', as rcl requires."""
    for key, value in data.items():
        if key == ROS_PARAMETERS:
            if value is not None and not isinstance(value, dict):
                return (f"{'/'.join(where) or 'top level'}: 'ros__parameters' must hold "
                        f"name: value pairs, got a {type(value).__name__}")
            continue
        if not isinstance(value, dict):
            under = f" under {'/'.join(where)}" if where else ""
            return (f"{quoted(key)}{under} is a value outside 'ros__parameters' (parameters go "
                    "under <node name>: ros__parameters:)")
        problem = _structure_error(value, where + [str(key)])
        if problem:
            return problem
    return ""


def params_files_errors(argv: Sequence[str]) -> List[str]:
    """Check every --params-file of a command line; one reason per unusable file."""
    return [e for e in (params_file_error(p) for p in params_files(argv)) if e]
