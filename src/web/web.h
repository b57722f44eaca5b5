/* The web console (serve --web ADDR:PORT): one page, compiled into the
 * binary, that shows every client of every per-client LUN and resets or
 * publishes their disks through the control socket's code (lg_ctl_request).
 * Access needs the admin password (lungate passwd); see web.c. */
#ifndef LUNGATE_WEB_WEB_H
#define LUNGATE_WEB_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LG_WEB_PBKDF2_ITERATIONS 600000u

struct lg_server;
struct lg_model;
struct lg_web;

struct lg_web_opts {
  const char *listen;                /* "ADDR:PORT"; NULL: the config's "web"."listen" */
  const char *cert, *key;            /* PEM files: HTTPS (NULL: the config's) */
  const char *password_file;         /* NULL: the config's, else lg_web_default_passwd() */
};

/* Start the console when --web or the config's "web": {"listen"} asks for
 * it.  NULL with *err NULL when neither does; NULL with a message in *err
 * (malloc'd) when it cannot start. */
struct lg_web *lg_web_start(struct lg_server *srv, const struct lg_model *m,
                            const struct lg_web_opts *o, char **err);
void lg_web_stop(struct lg_web *w);

/* The password file: "pbkdf2-sha256$ITER$SALT$HASH" (hex). */
int lg_web_hash(const char *password, unsigned iterations, char *out, size_t len);
/* 1: the password matches the line; 0: it does not; -1: the line is malformed. */
int lg_web_verify(const char *line, const char *password);
/* Is line a well-formed password file line? */
bool lg_web_hash_valid(const char *line);
/* /etc/lungate/web.passwd for root, else ~/.config/lungate/web.passwd. */
const char *lg_web_default_passwd(void);
/* `lungate passwd`; argv[0] is "passwd". */
int cmd_passwd(int argc, char **argv);

/* The page's files (generated from src/web/assets by CMake). */
struct lg_web_asset {
  const char *path;                  /* "/app.js" */
  const unsigned char *data;
  size_t len;
};
extern const struct lg_web_asset lg_web_assets[];
extern const size_t lg_web_n_assets;

#endif
