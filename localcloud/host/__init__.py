"""The host side of the local cloud: machines, their network, disks, the base image, and `down`.

Nothing here knows about the EC2 API; the controller (localcloud.controller) drives it.
"""
