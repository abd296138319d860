"""Errors a user can fix, each told in one line that names the file or setting and the fix."""
import errno


class InputError(Exception):
    """Bad input the user can fix; one message per problem, each naming the file or setting and the fix."""

    def __init__(self, *messages):
        super().__init__(*messages)
        self.messages = messages

    def __str__(self):
        return "\n".join(self.messages)


OS_FIXES = {
    errno.ENOSPC: "free space on that disk or choose another output folder (--out_root, --out_dir)",
    errno.EDQUOT: "free space within your quota or choose another output folder (--out_root, --out_dir)",
    errno.EFBIG: "the file system refuses files this large; choose another output folder (--out_root, --out_dir)",
    errno.EROFS: "the file system is read-only; choose another output folder (--out_root, --out_dir)",
    errno.EACCES: "give this user access to it, or choose another output folder (--out_root, --out_dir)",
    errno.EPERM: "give this user access to it, or choose another output folder (--out_root, --out_dir)",
    errno.ENOTDIR: "a file stands where a folder is needed; move it away or choose another output folder "
                   "(--out_root, --out_dir)",
    errno.EEXIST: "a file stands where a folder is needed; move it away or choose another output folder "
                  "(--out_root, --out_dir)",
}


def os_error_message(e):
    """One line for a file the system would not read or write: the file, the system's reason, the fix."""
    fix = OS_FIXES.get(e.errno, "check the file and its disk, then rerun the same command")
    where = f"{e.filename}: " if e.filename else ""
    return f"{where}{e.strerror or type(e).__name__}; {fix}"
