"""The API's documents: the OpenAPI document's parts (`openapi`), its pages (`api_pages`, Swagger UI at `/schema`),
the docs site (`site`) and the Markdown rendering of the document (`openapi_markdown`)."""
