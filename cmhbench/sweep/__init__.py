"""Sweeps: grids of runs on one machine, several GPUs or a Slurm cluster, resumable."""
