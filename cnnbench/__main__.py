from cnnbench.cli import entry

entry()
