# the first column of each file, one file after the other.
cwlVersion: v1.0
class: CommandLineTool
requirements:
  DockerRequirement:
    dockerPull: ubuntu:20.04
baseCommand: [cut, -f, "1"]
stdout: cut
inputs:
  files:
    type: File[]
    inputBinding:
      position: 1
outputs:
  cut_file:
    type: stdout
