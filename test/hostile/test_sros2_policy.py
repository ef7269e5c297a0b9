"""The shipped SROS2 policy is well-formed (sros2 format 0.2.0) and matches the node's names."""

import xml.etree.ElementTree as ET
from pathlib import Path

POLICY = Path(__file__).resolve().parents[2] / 'config' / 'sros2' / 'llm_bench_policy.xml'
RULES = {'topics': ('topic', {'publish', 'subscribe'}),
         'services': ('service', {'request', 'reply'}),
         'actions': ('action', {'call', 'execute'})}


def _profiles():
    root = ET.parse(POLICY).getroot()
    assert root.tag == 'policy' and root.get('version') == '0.2.0'
    (enclaves,) = root.findall('enclaves')
    found = {}
    for enclave in enclaves.findall('enclave'):
        assert enclave.get('path', '').startswith('/')
        for profiles in enclave.findall('profiles'):
            for profile in profiles.findall('profile'):
                assert profile.get('ns') and profile.get('node')
                found[(enclave.get('path'), profile.get('node'))] = profile
    return found


def _allowed(profile, kind, rule):
    child, _ = RULES[kind]
    return {e.text for block in profile.findall(kind) if block.get(rule) == 'ALLOW'
            for e in block.findall(child)}


def test_the_policy_has_the_structure_sros2_reads():
    profiles = _profiles()
    assert set(profiles) == {('/shadowhound/llm_bench', 'llm_bench'),
                             ('/shadowhound/llm_bench_client', 'llm_bench_client')}
    for profile in profiles.values():
        for block in profile:
            assert block.tag in RULES, block.tag
            child, rules = RULES[block.tag]
            assert set(block.attrib) <= rules and block.attrib
            assert set(block.attrib.values()) <= {'ALLOW', 'DENY'}
            assert [e.tag for e in block] and all(e.tag == child and e.text for e in block)


def test_the_policy_names_what_the_node_and_the_client_use():
    from shadowhound_llm_bench.ros.action_server import ACTION_NAME
    from shadowhound_llm_bench.ros.client import DEFAULT_ACTION
    from shadowhound_llm_bench.ros.memory_publisher import TOPIC
    from shadowhound_llm_bench.ros.node import NODE_NAME

    profiles = _profiles()
    node = profiles[('/shadowhound/llm_bench', NODE_NAME)]
    assert ACTION_NAME in _allowed(node, 'actions', 'execute')
    assert {TOPIC, '/diagnostics', '/rosout'} <= _allowed(node, 'topics', 'publish')
    assert '~/set_parameters' in _allowed(node, 'services', 'reply')
    client = profiles[('/shadowhound/llm_bench_client', 'llm_bench_client')]
    assert DEFAULT_ACTION == f'/{NODE_NAME}/run_benchmark'
    assert _allowed(client, 'actions', 'call') == {DEFAULT_ACTION}
    assert f'/{NODE_NAME}/set_parameters' in _allowed(client, 'services', 'request')
    # Only the client's identity may start runs: the node itself calls nothing.
    assert not _allowed(node, 'actions', 'call')
    assert 'node_name: str = "llm_bench_client"' in Path(
        __file__).resolve().parents[2].joinpath(
            'shadowhound_llm_bench', 'ros', 'bench_client.py').read_text()
