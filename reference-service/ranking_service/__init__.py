"""The reference real-time ranking service of a recplat brand."""
