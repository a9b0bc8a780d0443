"""`plan`, `up`, `down` and `logs`: the cluster, converged host by host over SSH.

`facts` reads each host (containers, images, network, firewall), `images` builds the
app image and ships images without a registry, `executor` applies a host's plan,
`verify` checks the converged cluster end to end, `up`/`down`/`logs` tie them to the
CLI (`survey_ctl.cli.cluster_cmd`). Heavy imports (paramiko, subprocess to docker)
stay inside functions.
"""
