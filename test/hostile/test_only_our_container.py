"""Only our container: a run restarts, limits and inspects the configured container, no other."""

import os
import threading
import uuid
from pathlib import Path

import pytest

from docker_api_recorder import DockerApiRecorder
from support.containers import connect_engine

SUITES = Path(__file__).resolve().parents[2] / 'config' / 'suites'
ENGINE_SOCKET = '/tmp/dockerd/docker.sock'
# The small scenario's node_parameters (config/scenarios/small.yaml) in GiB.
SMALL_PARAMS = {
    'simulation.memory_scale': 0.125,
    'simulation.total_gib': 1.0,
    'simulation.system_reserve_gib': 0.125,
    'reserve.fixed_gib': 0.03125,
    'policy.safety_buffer_gib': 0.015625,
    'benchmark.num_predict': 8,
    'benchmark.pull_missing': False,
    'sample_period_s': 0.1,
}


def _engine_socket():
    host = os.environ.get('DOCKER_HOST', '')
    path = host[len('unix://'):] if host.startswith('unix://') else ENGINE_SOCKET
    return path if os.path.exists(path) else None


@pytest.fixture(scope='module')
def docker_client():
    """Connect to the engine's own socket (the API recorder of a test stands in front of it)."""
    if _engine_socket() is None:
        pytest.skip('no Docker engine socket here')
    client = connect_engine(base_url=f'unix://{_engine_socket()}')
    yield client
    client.close()


@pytest.fixture
def containers(docker_client):
    """Our simulator container and a bystander on the same engine; both removed afterwards."""
    from shadowhound_llm_bench.sim.launcher import start_container_simulator

    tag = uuid.uuid4().hex[:8]
    started = []
    try:
        for role in ('ours', 'bystander'):
            started.append(start_container_simulator(
                docker_client=docker_client, name=f'hostile-{role}-{tag}', scenario='small',
                port=0))
        yield started[0], started[1]
    finally:
        for sim in started:
            try:
                sim.remove()
            except Exception:  # already gone
                pass


def _snapshot(container):
    container.reload()
    state, host = container.attrs['State'], container.attrs['HostConfig']
    return {'status': state['Status'], 'started_at': state['StartedAt'], 'pid': state['Pid'],
            'restarts': container.attrs['RestartCount'], 'memory': host['Memory'],
            'memory_swap': host['MemorySwap']}


def test_a_hostile_goal_restarts_and_inspects_only_our_container(
        docker_client, containers, tmp_path, monkeypatch):
    interfaces = pytest.importorskip('shadowhound_llm_bench_interfaces.action')
    from shadowhound_llm_bench_interfaces.msg import ModelResult

    from shadowhound_llm_bench.core.settings.goal_validation import GoalRequest, resolve_goal
    from shadowhound_llm_bench.core.settings.node_settings import NodeSettings
    from shadowhound_llm_bench.ros.benchmark_session import BenchmarkSession
    from shadowhound_llm_bench.ros.memory_stack import build_memory_stack

    ours, bystander = containers
    bystander_before = _snapshot(bystander.container)
    ours_before = _snapshot(ours.container)
    with DockerApiRecorder(engine_socket=_engine_socket(),
                           proxy_socket=str(tmp_path / 'docker.sock')) as recorder:
        monkeypatch.setenv('DOCKER_HOST', recorder.docker_host)
        settings = NodeSettings(values=dict(
            SMALL_PARAMS, **{'container.name': ours.name, 'ollama_host': ours.base_url,
                             'results_dir': str(tmp_path / 'results'),
                             'container.restart_timeout_s': 60.0}))
        # Every field a goal has that could name something names the bystander.
        goal = resolve_goal(GoalRequest(
            models=['qwen2.5:0.5b', bystander.name, str(bystander.container.id)[:12]],
            run_name=bystander.name, preset='conservative', repetitions=1,
            keep_alive='0'), settings, suite_dirs=[SUITES])
        stack = build_memory_stack(settings)
        try:
            session = BenchmarkSession(stack=stack, action_type=interfaces.RunBenchmark,
                                       model_result_type=ModelResult)
            session.check(goal, settings)
            report = session.run(goal, settings, lambda event: None, threading.Event())
        finally:
            stack.close()
    targets = set(recorder.container_targets())
    assert report.result.models, 'the run reported its models'
    # The conservative preset restarted our container before the model: a real restart ...
    assert _snapshot(ours.container)['started_at'] != ours_before['started_at']
    restarts = [path for method, path in recorder.requests
                if method == 'POST' and path.split('?')[0].endswith('/restart')]
    assert restarts and all(ours.name in path or str(ours.container.id) in path
                            for path in restarts), recorder.requests
    # ... and every container request named ours, by its name or its full id.
    assert targets and targets <= {ours.name, str(ours.container.id)}, targets
    assert _snapshot(bystander.container) == bystander_before


def test_a_container_name_that_is_an_id_prefix_of_another_is_refused(docker_client, containers):
    from shadowhound_llm_bench.adapters.container_backend import ContainerNotFound
    from shadowhound_llm_bench.adapters.docker_container import DockerContainer

    ours, bystander = containers
    before = _snapshot(bystander.container)
    prefix = str(bystander.container.id)[:12]
    with pytest.raises(ContainerNotFound, match='only the exact name is used'):
        DockerContainer(name=prefix, ollama_base_url=ours.base_url, docker_client=docker_client,
                        sampling='api')
    assert _snapshot(bystander.container) == before


def test_limiting_restarting_and_sampling_address_only_our_container(
        docker_client, containers, tmp_path):
    import docker

    from shadowhound_llm_bench.adapters.docker_container import DockerContainer

    ours, bystander = containers
    before = _snapshot(bystander.container)
    limit_bytes = _snapshot(ours.container)['memory'] + 64 * 1024 * 1024
    with DockerApiRecorder(engine_socket=_engine_socket(),
                           proxy_socket=str(tmp_path / 'docker.sock')) as recorder:
        client = docker.DockerClient(base_url=recorder.docker_host, timeout=60)
        backend = DockerContainer(name=ours.name, ollama_base_url=ours.base_url,
                                  docker_client=client, sampling='api', api_period_s=0.2)
        try:
            backend.set_memory_limit(limit_bytes)
            backend.restart(deadline_s=60.0)
            assert backend.state().name == 'RUNNING'
            backend.read_api_sample()
        finally:
            backend.close()
            client.close()
    methods = {(method, path.split('?')[0].rsplit('/', 1)[-1]) for method, path in
               recorder.requests}
    assert {('POST', 'update'), ('POST', 'restart'), ('GET', 'stats')} <= methods, methods
    assert set(recorder.container_targets()) <= {ours.name, str(ours.container.id)}
    assert _snapshot(ours.container)['memory'] == limit_bytes
    assert _snapshot(bystander.container) == before
