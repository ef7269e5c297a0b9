"""The nvidia-smi stand-in of a simulated Thor: --query-compute-apps from the driver's socket."""

from __future__ import annotations

import os
import sys

NVIDIA_SMI_NAME = 'nvidia-smi'
SOCKET_NAME = 'gpu.sock'


NVIDIA_SMI_SOURCE = '''#!{python} -I
"""nvidia-smi stand-in of a simulated Thor: --query-compute-apps only (MiB of this machine)."""
import json, socket, sys
FIELDS = {{'pid': 'pid', 'process_name': 'process_name', 'used_memory': 'used_memory',
          'used_gpu_memory': 'used_memory'}}
args = sys.argv[1:]
query = [a.split('=', 1)[1] for a in args if a.startswith('--query-compute-apps=')]
fmt = [a.split('=', 1)[1] for a in args if a.startswith('--format=')]
if not query:
    print('nvidia-smi (simulated): only --query-compute-apps=... is answered', file=sys.stderr)
    sys.exit(2)
names = [f.strip() for f in query[0].split(',')]
unknown = [n for n in names if n not in FIELDS]
if unknown:
    print('Field "%s" is not a valid field to query.' % unknown[0], file=sys.stderr)
    sys.exit(2)
options = fmt[0].split(',') if fmt else ['csv']
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.settimeout(2.0)
try:
    sock.connect({socket_path!r})
    sock.sendall(b'{{"op": "apps"}}\\n')
    data = b''
    while not data.endswith(b'\\n'):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    apps = json.loads(data)
except (OSError, ValueError) as exc:
    print('Failed to initialize NVML: %s' % exc, file=sys.stderr)
    sys.exit(9)
if 'noheader' not in options:
    print(', '.join(n + (' [MiB]' if FIELDS[n] == 'used_memory' and 'nounits' not in options
                         else '') for n in names))
for app in apps:
    cells = []
    for n in names:
        value = app[FIELDS[n]]
        if FIELDS[n] == 'used_memory':
            value = '%d' % (value // 1048576) + ('' if 'nounits' in options else ' MiB')
        cells.append(str(value))
    print(', '.join(cells))
'''


def write_nvidia_smi(folder: str, python: str = sys.executable) -> str:
    """Write the executable nvidia-smi stand-in into folder; return its path."""
    path = os.path.join(folder, NVIDIA_SMI_NAME)
    temporary = f'{path}.{os.getpid()}.tmp'
    with open(temporary, 'w', encoding='ascii') as handle:
        handle.write(NVIDIA_SMI_SOURCE.format(
            python=python, socket_path=os.path.join(folder, SOCKET_NAME)))
    os.replace(temporary, path)
    os.chmod(path, 0o755)
    return path
