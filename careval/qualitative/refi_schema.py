"""The REFI-QDA 1.0 XML schemas (QDA-XML, REFI www.qdasoftware.org, MIT licence), as text.

``PROJECT_XSD`` is Project.xsd (Library QDA-XML 1.0, release 18 March 2019) of the
REFI-QDA standard, transcribed from the copy in openqda/refi-tools (validators/javascript/
schema.xsd): every element, attribute, type and constraint kept, the layout compacted.
``CODEBOOK_XSD`` is Codebook.xsd 1.0 (root ``CodeBook`` in ``urn:QDA-XML:codebook:1.0``: Codes
and optional Sets), written out from the standard's structure; no untouched public copy of it was
available here, so it is checked in the tests against exported and hand-made codebooks only.
Kept as Python strings so that they travel with the package without package-data settings.

Copyright 2019 REFI www.qdasoftware.org. Permission is hereby granted, free of charge, to any
person obtaining a copy of this software and associated documentation files (the "Software"), to
deal in the Software without restriction, including without limitation the rights to use, copy,
modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to permit
persons to whom the Software is furnished to do so, subject to the following conditions: The above
copyright notice and this permission notice shall be included in all copies or substantial
portions of the Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
"""

from __future__ import annotations

PROJECT_NS = "urn:QDA-XML:project:1.0"
CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"

_GUID = (
    "([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})|"
    "(\\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\\})"
)
_SIMPLE = f"""
  <xsd:simpleType name="GUIDType">
    <xsd:restriction base="xsd:token"><xsd:pattern value="{_GUID}"/></xsd:restriction>
  </xsd:simpleType>
  <xsd:simpleType name="RGBType">
    <xsd:restriction base="xsd:token">
      <xsd:pattern value="#([A-Fa-f0-9]{{6}}|[A-Fa-f0-9]{{3}})"/>
    </xsd:restriction>
  </xsd:simpleType>
"""
_AUDIT = """
    <xsd:attribute name="creatingUser" type="GUIDType"/>
    <xsd:attribute name="creationDateTime" type="xsd:dateTime"/>
    <xsd:attribute name="modifyingUser" type="GUIDType"/>
    <xsd:attribute name="modifiedDateTime" type="xsd:dateTime"/>
"""
_REF = """
  <xsd:complexType name="{0}">
    <xsd:attribute name="targetGUID" type="GUIDType" use="required"/>
  </xsd:complexType>"""


def _rect(name: str, extra: str = "") -> str:
    return f"""
  <xsd:complexType name="{name}">
    <xsd:sequence>
      <xsd:element name="Description" type="xsd:string" minOccurs="0"/>{extra}
      <xsd:element name="Coding" type="CodingType" minOccurs="0" maxOccurs="unbounded"/>
      <xsd:element name="NoteRef" type="NoteRefType" minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
    <xsd:attribute name="guid" type="GUIDType" use="required"/>
    <xsd:attribute name="name" type="xsd:string"/>
    {{attrs}}{_AUDIT}
  </xsd:complexType>"""


_XY = """<xsd:attribute name="firstX" type="xsd:integer" use="required"/>
    <xsd:attribute name="firstY" type="xsd:integer" use="required"/>
    <xsd:attribute name="secondX" type="xsd:integer" use="required"/>
    <xsd:attribute name="secondY" type="xsd:integer" use="required"/>"""
_BEGIN_END = """<xsd:attribute name="begin" type="xsd:integer" use="required"/>
    <xsd:attribute name="end" type="xsd:integer" use="required"/>"""


def _media(name: str, inner: str) -> str:
    return f"""
  <xsd:complexType name="{name}">
    <xsd:sequence>
      <xsd:element name="Description" type="xsd:string" minOccurs="0"/>{inner}
      <xsd:element name="Coding" type="CodingType" minOccurs="0" maxOccurs="unbounded"/>
      <xsd:element name="NoteRef" type="NoteRefType" minOccurs="0" maxOccurs="unbounded"/>
      <xsd:element name="VariableValue" type="VariableValueType" minOccurs="0"
                   maxOccurs="unbounded"/>
    </xsd:sequence>
    <xsd:attribute name="guid" type="GUIDType" use="required"/>
    <xsd:attribute name="name" type="xsd:string"/>
    <xsd:attribute name="path" type="xsd:string"/>
    <xsd:attribute name="currentPath" type="xsd:string"/>{_AUDIT}
  </xsd:complexType>"""


def _enum(name: str, values: str) -> str:
    items = "".join(f'<xsd:enumeration value="{v}"/>' for v in values.split())
    return f"""
  <xsd:simpleType name="{name}">
    <xsd:restriction base="xsd:token">{items}</xsd:restriction>
  </xsd:simpleType>"""


PROJECT_XSD = (
    f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Library: QDA-XML version 1.0  Release Date: 18 March 2019  Module: Project.xsd -->
<xsd:schema xmlns="{PROJECT_NS}" xmlns:xsd="http://www.w3.org/2001/XMLSchema"
            targetNamespace="{PROJECT_NS}" elementFormDefault="qualified"
            attributeFormDefault="unqualified" version="1.0">
  <xsd:element name="Project" type="ProjectType"/>
  <xsd:complexType name="ProjectType">
    <xsd:sequence>
      <xsd:element name="Users" type="UsersType" minOccurs="0"/>
      <xsd:element name="CodeBook" type="CodeBookType" minOccurs="0"/>
      <xsd:element name="Variables" type="VariablesType" minOccurs="0"/>
      <xsd:element name="Cases" type="CasesType" minOccurs="0"/>
      <xsd:element name="Sources" type="SourcesType" minOccurs="0"/>
      <xsd:element name="Notes" type="NotesType" minOccurs="0"/>
      <xsd:element name="Links" type="LinksType" minOccurs="0"/>
      <xsd:element name="Sets" type="SetsType" minOccurs="0"/>
      <xsd:element name="Graphs" type="GraphsType" minOccurs="0"/>
      <xsd:element name="Description" type="xsd:string" minOccurs="0"/>
      <xsd:element name="NoteRef" type="NoteRefType" minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
    <xsd:attribute name="name" type="xsd:string" use="required"/>
    <xsd:attribute name="origin" type="xsd:string"/>
    <xsd:attribute name="creatingUserGUID" type="GUIDType"/>
    <xsd:attribute name="creationDateTime" type="xsd:dateTime"/>
    <xsd:attribute name="modifyingUserGUID" type="GUIDType"/>
    <xsd:attribute name="modifiedDateTime" type="xsd:dateTime"/>
    <xsd:attribute name="basePath" type="xsd:string"/>
  </xsd:complexType>
  <xsd:complexType name="UsersType">
    <xsd:sequence><xsd:element name="User" type="UserType" maxOccurs="unbounded"/></xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="UserType">
    <xsd:attribute name="guid" type="GUIDType" use="required"/>
    <xsd:attribute name="name" type="xsd:string"/>
    <xsd:attribute name="id" type="xsd:string"/>
  </xsd:complexType>
  <xsd:complexType name="CodeBookType">
    <xsd:sequence><xsd:element name="Codes" type="CodesType"/></xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="CodesType">
    <xsd:sequence><xsd:element name="Code" type="CodeType" maxOccurs="unbounded"/></xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="CodeType">
    <xsd:sequence>
      <xsd:element name="Description" type="xsd:string" minOccurs="0"/>
      <xsd:element name="NoteRef" type="NoteRefType" minOccurs="0" maxOccurs="unbounded"/>
      <xsd:element name="Code" type="CodeType" minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
    <xsd:attribute name="guid" type="GUIDType" use="required"/>
    <xsd:attribute name="name" type="xsd:string" use="required"/>
    <xsd:attribute name="isCodable" type="xsd:boolean" use="required"/>
    <xsd:attribute name="color" type="RGBType"/>
  </xsd:complexType>
  <xsd:complexType name="CasesType">
    <xsd:sequence><xsd:element name="Case" type="CaseType" maxOccurs="unbounded"/></xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="CaseType">
    <xsd:sequence>
      <xsd:element name="Description" type="xsd:string" minOccurs="0"/>
      <xsd:element name="CodeRef" type="CodeRefType" minOccurs="0" maxOccurs="unbounded"/>
      <xsd:element name="VariableValue" type="VariableValueType" minOccurs="0"
                   maxOccurs="unbounded"/>
      <xsd:element name="SourceRef" type="SourceRefType" minOccurs="0" maxOccurs="unbounded"/>
      <xsd:element name="SelectionRef" type="SelectionRefType" minOccurs="0"
                   maxOccurs="unbounded"/>
    </xsd:sequence>
    <xsd:attribute name="guid" type="GUIDType" use="required"/>
    <xsd:attribute name="name" type="xsd:string"/>
  </xsd:complexType>
  <xsd:complexType name="VariablesType">
    <xsd:sequence>
      <xsd:element name="Variable" type="VariableType" maxOccurs="unbounded"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="VariableType">
    <xsd:sequence>
      <xsd:element name="Description" type="xsd:string" minOccurs="0"/>
    </xsd:sequence>
    <xsd:attribute name="guid" type="GUIDType" use="required"/>
    <xsd:attribute name="name" type="xsd:string" use="required"/>
    <xsd:attribute name="typeOfVariable" type="typeOfVariableType" use="required"/>
  </xsd:complexType>
  <xsd:complexType name="VariableValueType">
    <xsd:sequence>
      <xsd:element name="VariableRef" type="VariableRefType"/>
      <xsd:choice>
        <xsd:element name="TextValue" type="xsd:string" minOccurs="0"/>
        <xsd:element name="BooleanValue" type="xsd:boolean" minOccurs="0"/>
        <xsd:element name="IntegerValue" type="xsd:integer" minOccurs="0"/>
        <xsd:element name="FloatValue" type="xsd:decimal" minOccurs="0"/>
        <xsd:element name="DateValue" type="xsd:date" minOccurs="0"/>
        <xsd:element name="DateTimeValue" type="xsd:dateTime" minOccurs="0"/>
      </xsd:choice>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="SetsType">
    <xsd:sequence><xsd:element name="Set" type="SetType" maxOccurs="unbounded"/></xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="SetType">
    <xsd:sequence>
      <xsd:element name="Description" type="xsd:string" minOccurs="0"/>
      <xsd:element name="MemberCode" type="CodeRefType" minOccurs="0" maxOccurs="unbounded"/>
      <xsd:element name="MemberSource" type="SourceRefType" minOccurs="0" maxOccurs="unbounded"/>
      <xsd:element name="MemberNote" type="NoteRefType" minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
    <xsd:attribute name="guid" type="GUIDType" use="required"/>
    <xsd:attribute name="name" type="xsd:string" use="required"/>
  </xsd:complexType>
  <xsd:complexType name="SourcesType">
    <xsd:choice maxOccurs="unbounded">
      <xsd:element name="TextSource" type="TextSourceType"/>
      <xsd:element name="PictureSource" type="PictureSourceType"/>
      <xsd:element name="PDFSource" type="PDFSourceType"/>
      <xsd:element name="AudioSource" type="AudioSourceType"/>
      <xsd:element name="VideoSource" type="VideoSourceType"/>
    </xsd:choice>
  </xsd:complexType>
  <xsd:complexType name="TextSourceType">
    <xsd:sequence>
      <xsd:element name="Description" type="xsd:string" minOccurs="0"/>
      <xsd:element name="PlainTextContent" type="xsd:string" minOccurs="0"/>
      <xsd:element name="PlainTextSelection" type="PlainTextSelectionType" minOccurs="0"
                   maxOccurs="unbounded"/>
      <xsd:element name="Coding" type="CodingType" minOccurs="0" maxOccurs="unbounded"/>
      <xsd:element name="NoteRef" type="NoteRefType" minOccurs="0" maxOccurs="unbounded"/>
      <xsd:element name="VariableValue" type="VariableValueType" minOccurs="0"
                   maxOccurs="unbounded"/>
    </xsd:sequence>
    <xsd:attribute name="guid" type="GUIDType" use="required"/>
    <xsd:attribute name="name" type="xsd:string"/>
    <xsd:attribute name="richTextPath" type="xsd:string"/>
    <xsd:attribute name="plainTextPath" type="xsd:string"/>{_AUDIT}
  </xsd:complexType>"""
    + _rect("PlainTextSelectionType").replace(
        "{attrs}",
        '<xsd:attribute name="startPosition" type="xsd:integer" use="required"/>\n'
        '    <xsd:attribute name="endPosition" type="xsd:integer" use="required"/>',
    )
    + _media(
        "PictureSourceType",
        '\n      <xsd:element name="TextDescription" type="TextSourceType" minOccurs="0"/>'
        '\n      <xsd:element name="PictureSelection" type="PictureSelectionType" minOccurs="0"'
        ' maxOccurs="unbounded"/>',
    )
    + _rect("PictureSelectionType").replace("{attrs}", _XY)
    + _media(
        "PDFSourceType",
        '\n      <xsd:element name="PDFSelection" type="PDFSelectionType" minOccurs="0"'
        ' maxOccurs="unbounded"/>'
        '\n      <xsd:element name="Representation" type="TextSourceType" minOccurs="0"/>',
    )
    + _rect(
        "PDFSelectionType",
        '\n      <xsd:element name="Representation" type="TextSourceType" minOccurs="0"/>',
    ).replace(
        "{attrs}", '<xsd:attribute name="page" type="xsd:integer" use="required"/>\n    ' + _XY
    )
    + _media(
        "AudioSourceType",
        '\n      <xsd:element name="Transcript" type="TranscriptType" minOccurs="0"'
        ' maxOccurs="unbounded"/>'
        '\n      <xsd:element name="AudioSelection" type="AudioSelectionType" minOccurs="0"'
        ' maxOccurs="unbounded"/>',
    )
    + _rect("AudioSelectionType").replace("{attrs}", _BEGIN_END)
    + _media(
        "VideoSourceType",
        '\n      <xsd:element name="Transcript" type="TranscriptType" minOccurs="0"'
        ' maxOccurs="unbounded"/>'
        '\n      <xsd:element name="VideoSelection" type="VideoSelectionType" minOccurs="0"'
        ' maxOccurs="unbounded"/>',
    )
    + _rect("VideoSelectionType").replace("{attrs}", _BEGIN_END)
    + f"""
  <xsd:complexType name="TranscriptType">
    <xsd:sequence>
      <xsd:element name="Description" type="xsd:string" minOccurs="0"/>
      <xsd:element name="PlainTextContent" type="xsd:string" minOccurs="0"/>
      <xsd:element name="SyncPoint" type="SyncPointType" minOccurs="0" maxOccurs="unbounded"/>
      <xsd:element name="TranscriptSelection" type="TranscriptSelectionType" minOccurs="0"
                   maxOccurs="unbounded"/>
      <xsd:element name="NoteRef" type="NoteRefType" minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
    <xsd:attribute name="guid" type="GUIDType" use="required"/>
    <xsd:attribute name="name" type="xsd:string"/>
    <xsd:attribute name="richTextPath" type="xsd:string"/>
    <xsd:attribute name="plainTextPath" type="xsd:string"/>{_AUDIT}
  </xsd:complexType>"""
    + _rect("TranscriptSelectionType").replace(
        "{attrs}",
        '<xsd:attribute name="fromSyncPoint" type="GUIDType"/>\n'
        '    <xsd:attribute name="toSyncPoint" type="GUIDType"/>',
    )
    + """
  <xsd:complexType name="SyncPointType">
    <xsd:attribute name="guid" type="GUIDType" use="required"/>
    <xsd:attribute name="timeStamp" type="xsd:integer"/>
    <xsd:attribute name="position" type="xsd:integer"/>
  </xsd:complexType>
  <xsd:complexType name="CodingType">
    <xsd:sequence>
      <xsd:element name="CodeRef" type="CodeRefType"/>
      <xsd:element name="NoteRef" type="NoteRefType" minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
    <xsd:attribute name="guid" type="GUIDType" use="required"/>
    <xsd:attribute name="creatingUser" type="GUIDType"/>
    <xsd:attribute name="creationDateTime" type="xsd:dateTime"/>
  </xsd:complexType>
  <xsd:complexType name="GraphsType">
    <xsd:sequence><xsd:element name="Graph" type="GraphType" maxOccurs="unbounded"/></xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="GraphType">
    <xsd:sequence>
      <xsd:element name="Vertex" type="VertexType" minOccurs="0" maxOccurs="unbounded"/>
      <xsd:element name="Edge" type="EdgeType" minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
    <xsd:attribute name="guid" type="GUIDType" use="required"/>
    <xsd:attribute name="name" type="xsd:string"/>
  </xsd:complexType>
  <xsd:complexType name="VertexType">
    <xsd:attribute name="guid" type="GUIDType" use="required"/>
    <xsd:attribute name="representedGUID" type="GUIDType"/>
    <xsd:attribute name="name" type="xsd:string"/>
    <xsd:attribute name="firstX" type="xsd:integer" use="required"/>
    <xsd:attribute name="firstY" type="xsd:integer" use="required"/>
    <xsd:attribute name="secondX" type="xsd:integer"/>
    <xsd:attribute name="secondY" type="xsd:integer"/>
    <xsd:attribute name="shape" type="ShapeType"/>
    <xsd:attribute name="color" type="RGBType"/>
  </xsd:complexType>
  <xsd:complexType name="EdgeType">
    <xsd:attribute name="guid" type="GUIDType" use="required"/>
    <xsd:attribute name="representedGUID" type="GUIDType"/>
    <xsd:attribute name="name" type="xsd:string"/>
    <xsd:attribute name="sourceVertex" type="GUIDType" use="required"/>
    <xsd:attribute name="targetVertex" type="GUIDType" use="required"/>
    <xsd:attribute name="color" type="RGBType"/>
    <xsd:attribute name="direction" type="directionType"/>
    <xsd:attribute name="lineStyle" type="LineStyleType"/>
  </xsd:complexType>
  <xsd:complexType name="NotesType">
    <xsd:sequence>
      <xsd:element name="Note" type="TextSourceType" maxOccurs="unbounded"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="LinksType">
    <xsd:sequence><xsd:element name="Link" type="LinkType" maxOccurs="unbounded"/></xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="LinkType">
    <xsd:sequence>
      <xsd:element name="NoteRef" type="NoteRefType" minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
    <xsd:attribute name="guid" type="GUIDType" use="required"/>
    <xsd:attribute name="name" type="xsd:string"/>
    <xsd:attribute name="direction" type="directionType"/>
    <xsd:attribute name="color" type="RGBType"/>
    <xsd:attribute name="originGUID" type="GUIDType"/>
    <xsd:attribute name="targetGUID" type="GUIDType"/>
  </xsd:complexType>"""
    + "".join(
        _REF.format(n)
        for n in (
            "NoteRefType",
            "CodeRefType",
            "SourceRefType",
            "SelectionRefType",
            "VariableRefType",
        )
    )
    + _SIMPLE
    + _enum("directionType", "Associative OneWay Bidirectional")
    + _enum("typeOfVariableType", "Text Boolean Integer Float Date DateTime")
    + _enum(
        "ShapeType",
        "Person Oval Rectangle RoundedRectangle Star LeftTriangle RightTriangle UpTriangle "
        "DownTriangle Note",
    )
    + _enum("LineStyleType", "dotted dashed solid")
    + "\n</xsd:schema>\n"
)

CODEBOOK_XSD = f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Library: QDA-XML version 1.0  Module: Codebook.xsd -->
<xsd:schema xmlns="{CODEBOOK_NS}" xmlns:xsd="http://www.w3.org/2001/XMLSchema"
            targetNamespace="{CODEBOOK_NS}" elementFormDefault="qualified"
            attributeFormDefault="unqualified" version="1.0">
  <xsd:element name="CodeBook" type="CodeBookType"/>
  <xsd:complexType name="CodeBookType">
    <xsd:sequence>
      <xsd:element name="Codes" type="CodesType"/>
      <xsd:element name="Sets" type="SetsType" minOccurs="0"/>
    </xsd:sequence>
    <xsd:attribute name="origin" type="xsd:string"/>
  </xsd:complexType>
  <xsd:complexType name="CodesType">
    <xsd:sequence><xsd:element name="Code" type="CodeType" maxOccurs="unbounded"/></xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="SetsType">
    <xsd:sequence><xsd:element name="Set" type="SetType" maxOccurs="unbounded"/></xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="CodeType">
    <xsd:sequence>
      <xsd:element name="Description" type="xsd:string" minOccurs="0"/>
      <xsd:element name="Code" type="CodeType" minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
    <xsd:attribute name="guid" type="GUIDType" use="required"/>
    <xsd:attribute name="name" type="xsd:string" use="required"/>
    <xsd:attribute name="isCodable" type="xsd:boolean" use="required"/>
    <xsd:attribute name="color" type="RGBType"/>
  </xsd:complexType>
  <xsd:complexType name="SetType">
    <xsd:sequence>
      <xsd:element name="Description" type="xsd:string" minOccurs="0"/>
      <xsd:element name="MemberCode" type="MemberCodeType" minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
    <xsd:attribute name="guid" type="GUIDType" use="required"/>
    <xsd:attribute name="name" type="xsd:string" use="required"/>
  </xsd:complexType>
  <xsd:complexType name="MemberCodeType">
    <xsd:attribute name="guid" type="GUIDType" use="required"/>
  </xsd:complexType>{_SIMPLE}
</xsd:schema>
"""
