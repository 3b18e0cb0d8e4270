"""The errors the training job reports to its user as a message, never as a traceback."""


class TrainingError(Exception):
    """The job cannot go on; the message says what is wrong, where, and how to fix it."""


class DataError(TrainingError):
    """The lake's data is unusable; the message names the file and the column."""
