"""The platform side of a custom number: OPTIONS, REGISTER, calls, the inbound UAS, RTP."""
