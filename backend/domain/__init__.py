"""Plain types of what the database holds (a clone attempt, a voice, what the launch gate weighs): what the records
read and write and the policy weighs, importing nothing that touches a database."""
