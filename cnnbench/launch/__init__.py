"""Launchers: where a sweep's runner runs. ``local`` is the runner in this process
(``cnnbench.commands.run``); ``slurm`` (``cnnbench.launch.slurm``) submits the cells as a
job array whose tasks each run the same runner on their node."""
