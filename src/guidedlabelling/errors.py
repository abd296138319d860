"""Errors a user can fix, each told in one line that names the file or setting and the fix."""


class InputError(Exception):
    """Bad input the user can fix; one message per problem, each naming the file or setting and the fix."""

    def __init__(self, *messages):
        super().__init__(*messages)
        self.messages = messages

    def __str__(self):
        return "\n".join(self.messages)
