"""The recplat Pulumi program: one component per module, wired by ``__main__``."""
