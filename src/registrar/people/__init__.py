"""People: the Person table and the FERPA rule every record of a person is read under."""
