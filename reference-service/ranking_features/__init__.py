"""The one feature definition shared by training and serving."""
