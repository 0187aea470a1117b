"""Generated telephone-audio fixtures for the transcription tests and benchmark."""
