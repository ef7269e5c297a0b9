"""
Runs as data.

The run log's records and the summary rebuilt from them, the status word, statistics over
repetitions, quality scoring, suites of tasks, recommendations, runs compared side by side,
progress events, and text from outside made inert for every output kind.
"""
