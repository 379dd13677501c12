#!/usr/bin/env cwl-runner
# md5sum of a file, read as it is (a .gz stays compressed), as upstream's md5 example.
cwlVersion: v1.0
class: CommandLineTool
requirements:
  DockerRequirement:
    dockerPull: ubuntu:20.04
baseCommand: md5sum
stdin: $(inputs.gzfile.path)
stdout: report
inputs:
  gzfile:
    type: File
outputs:
  report:
    type: stdout
