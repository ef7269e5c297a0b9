"""Real files and a real nvidia-smi stand-in executable for the memory-source tests."""

import os
import stat
import sys
import textwrap

MIB = 1024 * 1024
GIB = 1024 * MIB


def write_meminfo(path, *, total, available, free, cached, nvmap=None):
    """Write a Linux-format meminfo file (values in kB, as the kernel does)."""
    lines = [f"MemTotal:       {total // 1024} kB", f"MemFree:        {free // 1024} kB",
             f"MemAvailable:   {available // 1024} kB", "Buffers:          1024 kB",
             f"Cached:         {cached // 1024} kB", "HugePages_Total:       0"]
    if nvmap is not None:
        lines.append(f"NvMapMemUsed:   {nvmap // 1024} kB")
    path.write_text("\n".join(lines) + "\n")


def write_cgroup_v2(directory, *, anon, file, inactive_file, limit="max"):
    """Write a cgroup v2 memory directory: memory.current, memory.stat, memory.max."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "memory.current").write_text(f"{anon + file}\n")
    (directory / "memory.stat").write_text(
        f"anon {anon}\nfile {file}\nkernel 4096\nactive_file {file - inactive_file}\n"
        f"inactive_file {inactive_file}\n")
    (directory / "memory.max").write_text(f"{limit}\n")


def write_cgroup_v1(directory, *, rss, cache, inactive_file):
    """Write a cgroup v1 memory directory with hierarchical totals."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "memory.usage_in_bytes").write_text(f"{rss + cache}\n")
    (directory / "memory.stat").write_text(
        f"cache {cache}\nrss {rss}\ntotal_cache {cache}\ntotal_rss {rss}\n"
        f"total_inactive_file {inactive_file}\n")
    (directory / "memory.limit_in_bytes").write_text(f"{0x7FFFFFFFFFFFF000}\n")


def write_nvidia_smi(directory, *, answer_file, sleep_s=0.0, exit_code=0):
    """
    Write an executable that answers like `nvidia-smi --query-compute-apps=... --format=csv,...`.

    It prints the content of answer_file (the test changes it between samples) and checks that
    it was asked the query the product must send.
    """
    script = directory / "nvidia-smi"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys, time
        want = ["--query-compute-apps=pid,process_name,used_memory",
                "--format=csv,noheader,nounits"]
        if sys.argv[1:] != want:
            print("unexpected arguments: " + " ".join(sys.argv[1:]), file=sys.stderr)
            sys.exit(2)
        time.sleep({sleep_s!r})
        if {exit_code!r}:
            print("NVIDIA-SMI has failed because it couldn't communicate with the driver",
                  file=sys.stderr)
            sys.exit({exit_code!r})
        sys.stdout.write(open({str(answer_file)!r}).read())
        """))
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    if not answer_file.exists():
        answer_file.write_text("")
    return str(script)


def compute_apps(*rows):
    """CSV rows (pid, name, MiB) as nvidia-smi prints them with noheader,nounits."""
    return "".join(f"{pid}, {name}, {mib}\n" for pid, name, mib in rows)


def file_mode(path):
    """Permission bits of a path."""
    return stat.S_IMODE(os.stat(path).st_mode)
