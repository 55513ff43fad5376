"""The local cloud: one module per AWS stand-in, composed by `stack` (see its STEPS).

procs (pid files, spawn, stop, wait_for, port probe), postgres (RDS), redis (ElastiCache),
localstack, cloudformation (the deploy to LocalStack), scheduler (EventBridge -> Lambda),
netlab/ (namespaces, delay links, the containment route), demosite, ui_server, packages.
The command-line entry points are the thin modules in scripts/ (`python -m scripts.X`).
"""
