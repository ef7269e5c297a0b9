"""
The one memory decider.

Decides, from readings only, whether a model may load and what must happen first: unload,
restart the container, drop caches, wait, or skip. `policy` holds the rules, `room_making` the
one loop that both the real run and the dry run go through, `preemption` and `memory_back` what
happens when the robot takes memory back; the budget, the container limit, MemFree headroom and
what was left loaded are decided here and nowhere else.
"""
