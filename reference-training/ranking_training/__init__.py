"""The reference batch training job of a recplat brand."""
