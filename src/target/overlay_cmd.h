/* The `lungate overlay` subcommands. */
#ifndef LUNGATE_TARGET_OVERLAY_CMD_H
#define LUNGATE_TARGET_OVERLAY_CMD_H

/* argv[0] is "overlay"; returns the exit status. */
int cmd_overlay(int argc, char **argv);

#endif
