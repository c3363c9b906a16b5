"""Serves an INK API's OpenAPI description (kept in the repo beside the service)."""

from tornado import web


class OpenAPIHandler(web.RequestHandler):
    def initialize(self, path):
        self.path_to_spec = path

    def get(self):
        self.set_header("Content-Type", "application/yaml")
        self.set_header("Access-Control-Allow-Origin", "*")  # a description, no data
        self.finish(self.path_to_spec.read_bytes())
