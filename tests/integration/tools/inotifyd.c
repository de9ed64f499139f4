/* A stand-in for busybox `inotifyd - DIR` (Debian's busybox-static lacks the applet):
   prints one line per event, "<letter>\t<dir>\t<name>", with busybox's letters
   (n create, c modify, e attrib, w close_write, d delete, m moved_from, y moved_to).
   Built static by the share tests and copied into a container. */
#include <stdio.h>
#include <sys/inotify.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char buf[65536];
    int fd = inotify_init();
    if (argc < 3 || fd < 0 || inotify_add_watch(fd, argv[2], IN_ALL_EVENTS) < 0) return 1;
    printf("watching\t%s\t\n", argv[2]);
    fflush(stdout);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) return 1;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            const struct { unsigned mask; char c; } names[] = {
                {IN_CREATE, 'n'}, {IN_MODIFY, 'c'}, {IN_ATTRIB, 'e'}, {IN_CLOSE_WRITE, 'w'},
                {IN_DELETE, 'd'}, {IN_MOVED_FROM, 'm'}, {IN_MOVED_TO, 'y'}};
            for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
                if (e->mask & names[i].mask)
                    printf("%c\t%s\t%s\n", names[i].c, argv[2], e->len ? e->name : "");
            fflush(stdout);
            p += sizeof *e + e->len;
        }
    }
}
